/**
 * SQL endpoint planning cost: parse + check + rewrite, on a cache hit and on a miss. Pure CPU,
 * no database: the planner is what the gateway adds before a statement reaches PostgreSQL.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.ts';
import { QueryCatalog } from '../src/plan/catalog.ts';
import { parseSql } from '../src/plan/sql/parser.ts';
import { SqlPlanner, type SqlScope } from '../src/plan/sql/plan-sql.ts';

export interface PlannerResult {
  iterations: number;
  warmup: number;
  statements: Array<{
    name: string;
    sql: string;
    hitP50: number;
    hitP99: number;
    missP50: number;
    missP99: number;
    /** p50 of the PostgreSQL parser alone (µs): on the caller's text, and on the rewritten text the plan carries. */
    parseP50: number;
    parseRewrittenP50: number;
    rewrittenLength: number;
  }>;
}

const WARMUP = 2000;

const STATEMENTS: Array<[string, string]> = [
  ['point query', 'SELECT id, region, amount FROM orders WHERE id = $1'],
  ['aggregate', 'SELECT region, sum(amount) AS revenue FROM orders WHERE status = $1 GROUP BY region ORDER BY 2 DESC LIMIT 10'],
  ['join + CTE', 'WITH big AS (SELECT region, count(*) AS n FROM orders GROUP BY region) SELECT o.id, b.n FROM orders o JOIN big b ON b.region = o.region WHERE o.amount > $1'],
];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number;
}

export async function runPlannerBench(iterations = 20_000): Promise<PlannerResult> {
  const root = join(import.meta.dirname, '..');
  const yaml = readFileSync(join(root, 'test', 'fixtures', 'seed003.yaml'), 'utf8');
  const config = await parseConfig(yaml, join(root, 'test', 'fixtures', 'virtual', 'tenantgate.yaml'), { env: { TG_TEST_DB: 'pglite://memory' } });
  const catalog = QueryCatalog.fromColumns(config, { orders: ['id', 'tenant_id', 'region', 'status', 'amount', 'internal_cost', 'email', 'deleted_at', 'created_at'] });
  const tenant = config.tenants.get('acme_corp')!;
  const scope: SqlScope = { views: catalog.views(tenant), tenant, write: false, maxRows: 10000, cacheKey: catalog.sqlCacheKey(tenant, 'read') };
  const out: PlannerResult = { iterations, warmup: WARMUP, statements: [] };
  for (const [name, sql] of STATEMENTS) {
    const params = sql.includes('$1') ? [1] : [];
    const planner = new SqlPlanner(iterations * 2);
    const time = (f: () => void) => {
      const t = process.hrtime.bigint();
      f();
      return Number(process.hrtime.bigint() - t) / 1000;
    };
    // Warm up the parser, the JIT and the cache.
    for (let i = 0; i < WARMUP; i++) planner.plan({ sql: `${sql} /* w${i} */`, params }, scope);
    const hits: number[] = [];
    for (let i = 0; i < iterations; i++) hits.push(time(() => planner.plan({ sql, params }, scope)));
    // A miss: the same statement with a different comment is a different text, so a fresh parse.
    const misses: number[] = [];
    for (let i = 0; i < iterations / 4; i++) misses.push(time(() => planner.plan({ sql: `${sql} /* ${i} */`, params }, scope)));
    // Where a miss goes: the parser alone, on the caller's text and on the (longer) rewritten text.
    const rewritten = planner.plan({ sql, params }, scope).sql;
    const parses: number[] = [];
    const parsesRewritten: number[] = [];
    for (let i = 0; i < iterations / 10; i++) {
      parses.push(time(() => parseSql(`${sql} /* ${i} */`)));
      parsesRewritten.push(time(() => parseSql(`${rewritten} /* ${i} */`)));
    }
    for (const xs of [hits, misses, parses, parsesRewritten]) xs.sort((a, b) => a - b);
    out.statements.push({
      name,
      sql,
      hitP50: percentile(hits, 0.5),
      hitP99: percentile(hits, 0.99),
      missP50: percentile(misses, 0.5),
      missP99: percentile(misses, 0.99),
      parseP50: percentile(parses, 0.5),
      parseRewrittenP50: percentile(parsesRewritten, 0.5),
      rewrittenLength: rewritten.length,
    });
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { loadParser } = await import('../src/plan/sql/parser.ts');
  await loadParser();
  const r = await runPlannerBench();
  for (const s of r.statements) {
    console.log(
      `${s.name.padEnd(12)} hit p50 ${s.hitP50.toFixed(1)} µs p99 ${s.hitP99.toFixed(1)} µs | miss p50 ${s.missP50.toFixed(1)} µs p99 ${s.missP99.toFixed(1)} µs | parse ${s.parseP50.toFixed(1)} µs, rewritten ${s.parseRewrittenP50.toFixed(1)} µs`,
    );
  }
}
