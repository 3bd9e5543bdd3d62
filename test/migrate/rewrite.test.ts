/**
 * Rewriting a migration for a schema-tier tenant (issue 15): every qualified reference to a
 * dataset table, or to a relation the migration creates in the dataset schema, moves to the
 * tenant's schema; other tables and unqualified names stay; what cannot be pointed at the copy
 * (a table named inside a string) or cannot run in the runner's transaction is refused with
 * MIGRATION_INVALID. The rewritten SQL is executed on a real database to prove it does what it says.
 */
import type { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantGateError } from '../../src/errors/index.ts';
import { checkStatements, createdTables, prepareRewrite, rewriteForSchema } from '../../src/migrate/rewrite.ts';
import { parseSql } from '../../src/plan/sql/parser.ts';
import { tenantSchema } from '../../src/tiers/location.ts';
import { newPglite } from '../support/backends.ts';

// Tenant ids may hold a dash: the schema name then needs quoting wherever it is printed.
const TO = tenantSchema('acme-co');
const Q = `"${TO}"`;
const O = { from: 'public', to: TO, tables: new Set(['orders']) };

/** Every schema-qualified relation (RangeVar) in the SQL's parse tree, as schema.name. */
function relations(sql: string): string[] {
  const r = parseSql(sql);
  if (!r.ok) throw new Error(`does not re-parse: ${r.error.message}\n${sql}`);
  const out: string[] = [];
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) return n.forEach(walk);
    if (typeof n !== 'object' || n === null) return;
    const o = n as Record<string, unknown>;
    if (typeof o['relname'] === 'string' && typeof o['schemaname'] === 'string') out.push(`${o['schemaname']}.${o['relname']}`);
    Object.values(o).forEach(walk);
  };
  walk(r.tree.stmts);
  return out;
}

function rewrite(sql: string, o = O): string {
  const r = rewriteForSchema(sql, o);
  relations(r.sql); // every rewritten text re-parses
  return r.sql;
}

function refused(fn: () => unknown, ...parts: Array<string | RegExp>): TenantGateError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TenantGateError);
    expect((err as TenantGateError).code).toBe('MIGRATION_INVALID');
    for (const p of parts) expect((err as Error).message).toMatch(p);
    return err as TenantGateError;
  }
  throw new Error('expected MIGRATION_INVALID, nothing was thrown');
}

beforeAll(prepareRewrite);

describe('rewriteForSchema', () => {
  it('is a schema name that needs quoting', () => {
    expect(TO).toBe('t_acme-co');
  });

  it('moves ALTER TABLE … ADD COLUMN with a default, keeping the default', () => {
    const out = rewrite(`ALTER TABLE public.orders ADD COLUMN note text NOT NULL DEFAULT 'none';`);
    expect(relations(out)).toEqual([`${TO}.orders`]);
    expect(out).toContain(`ALTER TABLE ${Q}.orders`);
    expect(out).toMatch(/DEFAULT 'none'/);
  });

  it('moves CREATE INDEX ON public.orders and leaves the index name unqualified', () => {
    const out = rewrite('CREATE INDEX orders_note_idx ON public.orders (note);');
    expect(relations(out)).toEqual([`${TO}.orders`]);
    expect(out).toMatch(/CREATE INDEX orders_note_idx ON "t_acme-co"\.orders/);
  });

  it('moves a table the migration creates, its REFERENCES and a later index on it', () => {
    const r = rewriteForSchema(
      `CREATE TABLE public.invoices (id serial PRIMARY KEY, order_id int REFERENCES public.orders (id), total numeric);
       CREATE INDEX ON public.invoices (order_id);`,
      O,
    );
    expect(r.statements).toBe(2);
    expect(relations(r.sql)).toEqual([`${TO}.invoices`, `${TO}.orders`, `${TO}.invoices`]);
  });

  it('moves views, sequences and CREATE TABLE AS in the dataset schema, reads included', () => {
    const out = rewrite(`CREATE SEQUENCE public.inv_no;
      CREATE TABLE public.big AS SELECT * FROM public.orders WHERE amount > 100;
      CREATE VIEW public.recent AS SELECT o.id FROM public.orders o JOIN public.countries c ON c.code = o.tenant_id;
      ALTER SEQUENCE public.inv_no RESTART WITH 10;`);
    // Tree order: CREATE TABLE AS lists its query before its target.
    expect(relations(out)).toEqual([`${TO}.inv_no`, `${TO}.orders`, `${TO}.big`, `${TO}.recent`, `${TO}.orders`, 'public.countries', `${TO}.inv_no`]);
  });

  it('moves UPDATE … FROM on a dataset table but leaves the shared lookup table public', () => {
    const out = rewrite(`UPDATE public.orders o SET amount = o.amount * 2 FROM public.countries c
      WHERE c.code = o.tenant_id AND public.orders.id > 0;`);
    expect(relations(out)).toEqual([`${TO}.orders`, 'public.countries']);
    // A column qualified by schema.table follows its FROM item.
    expect(out).toContain(`${Q}.orders.id > 0`);
  });

  it('moves INSERT, DELETE … USING, TRUNCATE and GRANT targets', () => {
    const out = rewrite(`INSERT INTO public.orders (tenant_id, amount) SELECT tenant_id, 0 FROM public.orders;
      DELETE FROM public.orders USING public.countries c WHERE c.code = public.orders.tenant_id;
      TRUNCATE public.orders;
      GRANT SELECT ON public.orders TO PUBLIC;`);
    expect(relations(out)).toEqual([`${TO}.orders`, `${TO}.orders`, `${TO}.orders`, 'public.countries', `${TO}.orders`, `${TO}.orders`]);
  });

  it('moves qualified-name lists: COMMENT ON COLUMN / TABLE / CONSTRAINT, DROP TABLE, DROP TRIGGER', () => {
    const out = rewrite(`COMMENT ON COLUMN public.orders.note IS 'free text';
      COMMENT ON TABLE public.orders IS 'orders';
      COMMENT ON CONSTRAINT orders_pkey ON public.orders IS 'pk';
      COMMENT ON TABLE public.countries IS 'shared';
      DROP TRIGGER IF EXISTS t ON public.orders;
      DROP TABLE IF EXISTS public.orders, public.countries;`);
    expect(out).toContain(`COMMENT ON COLUMN ${Q}.orders.note IS 'free text'`);
    expect(out).toContain(`COMMENT ON TABLE ${Q}.orders IS 'orders'`);
    expect(out).toMatch(/COMMENT ON CONSTRAINT orders_pkey ON "t_acme-co"\.orders/);
    expect(out).toContain(`COMMENT ON TABLE public.countries IS 'shared'`);
    expect(out).toMatch(/DROP TRIGGER IF EXISTS t ON "t_acme-co"\.orders/);
    expect(out).toMatch(/DROP TABLE IF EXISTS "t_acme-co"\.orders, public\.countries/);
  });

  it("moves qualified index names (DROP INDEX, ALTER INDEX, COMMENT ON INDEX): the copy's indexes live in the tenant schema", () => {
    const out = rewrite(`DROP INDEX public.orders_note_idx;
      ALTER INDEX public.orders_pkey RENAME TO orders_pk;
      ALTER INDEX public.orders_amount_idx SET (fillfactor = 70);
      COMMENT ON INDEX public.orders_pk IS 'pk';`);
    expect(out).toMatch(/DROP INDEX "t_acme-co"\.orders_note_idx/);
    expect(out).toMatch(/ALTER INDEX "t_acme-co"\.orders_pkey RENAME TO orders_pk/);
    expect(relations(out)).toEqual([`${TO}.orders_pkey`, `${TO}.orders_amount_idx`]);
    expect(out).toMatch(/COMMENT ON INDEX "t_acme-co"\.orders_pk/);
  });

  it('leaves unqualified names, other schemas and other tables alone', () => {
    const out = rewrite(`ALTER TABLE orders ADD COLUMN z int;
      CREATE INDEX ON orders (z);
      ALTER TABLE audit.orders ADD COLUMN z int;
      ALTER TABLE public.countries ADD COLUMN z int;
      DROP TABLE orders;`);
    expect(relations(out)).toEqual(['audit.orders', 'public.countries']);
    expect(out).toMatch(/ALTER TABLE orders\s/);
    expect(out).toMatch(/DROP TABLE orders(;|$)/m);
    expect(out).not.toContain(TO);
  });

  it('rewrites only the schema it is given', () => {
    const out = rewrite('ALTER TABLE sales.orders ADD COLUMN z int; ALTER TABLE public.orders ADD COLUMN z int;', { from: 'sales', to: TO, tables: new Set(['orders']) });
    expect(relations(out)).toEqual([`${TO}.orders`, 'public.orders']);
  });

  it('keeps a comment-only migration as it is', () => {
    const sql = '-- nothing yet\n';
    expect(rewriteForSchema(sql, O)).toEqual({ sql, statements: 0 });
  });

  it('reports what the migration creates in the dataset schema', () => {
    expect([...createdTables('CREATE TABLE public.a (x int); CREATE TABLE b (x int); CREATE VIEW public.v AS SELECT 1; CREATE TABLE other.c (x int)', 'public')]).toEqual(['a', 'v']);
  });
});

describe('refusals', () => {
  it.each([
    ["SELECT nextval('public.orders_id_seq');", 'public.orders_id_seq'],
    ["ALTER TABLE public.orders ALTER COLUMN id SET DEFAULT nextval('public.orders_id_seq');", 'public.orders_id_seq'],
    ["SELECT 'public.orders'::regclass;", 'public.orders'],
    [`SELECT '"public"."orders"'::regclass;`, '"public"."orders"'],
    ['DO $$ BEGIN UPDATE public.orders SET amount = 0; END $$;', 'public.orders'],
    ["CREATE FUNCTION f() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM public.orders';", 'public.orders'],
  ])('refuses a dataset table named inside a string: %s', (sql, named) => {
    refused(() => rewriteForSchema(sql, O), 'statement 1 at line 1', `a string names ${named}`);
  });

  it('refuses a string naming a table the migration creates, and gives its position', () => {
    refused(
      () => rewriteForSchema("CREATE TABLE public.invoices (id int);\n\nSELECT setval('public.invoices_id_seq', 1);", O, '0004_inv'),
      /^0004_inv: statement 2 at line 3 \(SELECT setval/,
      'public.invoices_id_seq',
    );
  });

  it('lets a string naming a shared, non-dataset table through', () => {
    expect(rewrite("SELECT 'public.countries'::regclass;")).toMatch(/'public\.countries'/);
  });

  it.each([
    ['BEGIN; ALTER TABLE public.orders ADD COLUMN x int; COMMIT;', 'transaction control'],
    ['ALTER TABLE public.orders ADD COLUMN x int; ROLLBACK;', 'transaction control'],
    ['START TRANSACTION;', 'transaction control'],
    ['CREATE INDEX CONCURRENTLY orders_x_idx ON public.orders (x);', 'CONCURRENTLY'],
    ['DROP INDEX CONCURRENTLY public.orders_x_idx;', 'CONCURRENTLY'],
    ['REINDEX TABLE CONCURRENTLY public.orders;', 'CONCURRENTLY'],
    ['VACUUM public.orders;', 'VACUUM'],
    ['SET search_path = public;', 'search_path'],
  ])('refuses on every target: %s', (sql, why) => {
    refused(() => checkStatements(sql, '0009_x'), /^0009_x: statement \d at line 1/, why);
    refused(() => rewriteForSchema(sql, O, '0009_x'), why);
  });

  it('lets ANALYZE and savepoint-free DDL through checkStatements', () => {
    expect(checkStatements('ANALYZE public.orders; ALTER TABLE public.orders ADD COLUMN x int;')).toBe(2);
  });

  it("refuses moving a dataset table's copy to another schema", () => {
    refused(() => rewriteForSchema('ALTER TABLE public.orders SET SCHEMA archive;', O), 'SET SCHEMA');
  });

  it('refuses SQL that does not parse, with the line and column', () => {
    const err = refused(() => checkStatements('ALTER TABLE public.orders ADD COLUMN x int;\nSELEC 1;', '0002_bad'), '0002_bad', 'does not parse', 'line 2, column 1');
    expect(err.message).toMatch(/syntax error/);
    refused(() => rewriteForSchema('ALTER TABLE public.orders ADD COLUMN', O), 'does not parse');
  });
});

describe('the rewritten SQL on a real database (PGlite)', () => {
  let db: PGlite;
  const M1 = `-- a column, an index, a new table referencing the dataset table, a data fix and a comment
ALTER TABLE public.orders ADD COLUMN note text NOT NULL DEFAULT 'none';
CREATE INDEX orders_note_idx ON public.orders (note);
CREATE TABLE public.invoices (
  id serial PRIMARY KEY,
  order_id int NOT NULL REFERENCES public.orders (id),
  total numeric
);
CREATE INDEX ON public.invoices (order_id);
UPDATE public.orders o SET amount = o.amount * 2 FROM public.countries c WHERE c.code = o.tenant_id;
COMMENT ON COLUMN public.orders.note IS 'free text';
`;
  const M2 = `DROP INDEX public.orders_note_idx;\n`;

  /** Runs a migration the way the runner does for a target: one transaction, search_path pinned. */
  async function run(sql: string, schemaFirst: string | null): Promise<void> {
    await db.transaction(async (tx) => {
      await tx.exec(`SET LOCAL search_path = ${schemaFirst ? `"${schemaFirst}", ` : ''}public`);
      await tx.exec(sql);
    });
  }
  const indexes = async (schema: string) =>
    (await db.query<{ indexname: string }>('SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname', [schema])).rows.map((r) => r.indexname);
  const columns = async (schema: string, table: string) =>
    (await db.query<{ column_name: string }>('SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position', [schema, table])).rows.map(
      (r) => r.column_name,
    );
  const tables = async (schema: string) =>
    (await db.query<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name", [schema])).rows.map((r) => r.table_name);
  const amounts = async (schema: string) =>
    (await db.query<{ amount: string }>(`SELECT amount::text FROM "${schema}".orders ORDER BY id`)).rows.map((r) => r.amount);

  beforeAll(async () => {
    db = await newPglite();
    await db.exec(`
      CREATE TABLE public.orders (id serial PRIMARY KEY, tenant_id text NOT NULL, amount numeric NOT NULL);
      CREATE TABLE public.countries (code text PRIMARY KEY, name text);
      CREATE SCHEMA "${TO}";
      CREATE TABLE "${TO}".orders (LIKE public.orders INCLUDING ALL);
      -- Both tenants' codes: an UPDATE left on public.orders would change the pooled row.
      INSERT INTO public.countries VALUES ('acme-co', 'Acme'), ('pooled1', 'Pooled');
      INSERT INTO public.orders (tenant_id, amount) VALUES ('pooled1', 10);
      INSERT INTO "${TO}".orders (tenant_id, amount) VALUES ('acme-co', 10);
    `);
  });
  afterAll(async () => {
    await db?.close();
  });

  it("changes the tenant's copy and nothing of the pooled tables", async () => {
    await run(rewriteForSchema(M1, O).sql, TO);
    expect(await columns(TO, 'orders')).toEqual(['id', 'tenant_id', 'amount', 'note']);
    expect(await tables(TO)).toEqual(['invoices', 'orders']);
    expect(await indexes(TO)).toEqual(['invoices_order_id_idx', 'invoices_pkey', 'orders_note_idx', 'orders_pkey']);
    const fk = await db.query<{ ref: string }>(`SELECT confrelid::regclass::text AS ref FROM pg_constraint WHERE conrelid = '"${TO}".invoices'::regclass AND contype = 'f'`);
    expect(fk.rows).toEqual([{ ref: `"${TO}".orders` }]);
    const comment = await db.query<{ c: string | null }>(`SELECT col_description('"${TO}".orders'::regclass, 4) AS c`);
    expect(comment.rows[0]?.c).toBe('free text');
    expect(await amounts(TO)).toEqual(['20']);

    // The pooled tables: untouched.
    expect(await columns('public', 'orders')).toEqual(['id', 'tenant_id', 'amount']);
    expect(await tables('public')).toEqual(['countries', 'orders']);
    expect(await indexes('public')).toEqual(['countries_pkey', 'orders_pkey']);
    expect(await amounts('public')).toEqual(['10']);
  });

  it('then runs unchanged on the pooled tables (the main target) beside the copy', async () => {
    await run(M1, null);
    expect(await columns('public', 'orders')).toEqual(['id', 'tenant_id', 'amount', 'note']);
    expect(await tables('public')).toEqual(['countries', 'invoices', 'orders']);
    expect(await amounts('public')).toEqual(['20']);
    expect(await amounts(TO)).toEqual(['20']);
  });

  it("drops the tenant's index by its qualified name, and only that one", async () => {
    await run(rewriteForSchema(M2, O).sql, TO);
    expect(await indexes(TO)).not.toContain('orders_note_idx');
    expect(await indexes('public')).toContain('orders_note_idx');
  });
});
