/**
 * `doctor --sarif` against the official SARIF 2.1.0 schema. test/fixtures/sarif-2.1.0-rtm.5.json is
 * the OASIS schema as shipped in the npm package @microsoft/jest-sarif (MIT), lib/schemas/; it is
 * draft-04, hence ajv-draft-04, and ajv-formats so `format: uri` and friends are checked too.
 */
import ajvDraft04 from 'ajv-draft-04';
import ajvFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDoctor } from '../../src/doctor/run.ts';
import { toSarif } from '../../src/doctor/sarif.ts';
import { BACKENDS, createFixture, fixture, type Fixture } from '../support/backends.ts';

// CommonJS packages: under NodeNext the default import is module.exports, whose `default` is the class.
// unicodeRegExp off: the schema's `language` pattern (`…{2}]?$`) is valid only without the `u` flag.
const ajv = new ajvDraft04.default({ allErrors: true, unicodeRegExp: false });
ajvFormats.default(ajv);
const validate = ajv.compile(JSON.parse(fixture('sarif-2.1.0-rtm.5.json')) as object);
const errors = (doc: unknown) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`));

describe('SARIF schema', () => {
  it('an empty run is valid', () => {
    expect(errors(toSarif([]))).toEqual([]);
  });
  it('the validator is not a rubber stamp: a bad level, a bad URI', () => {
    const finding = { id: 'TG005', severity: 'critical' as const, object: 'policy p', message: 'm', fix: 'f' };
    expect(errors(toSarif([finding]))).toEqual([]);
    const badLevel = toSarif([finding]) as { runs: Array<{ results: Array<Record<string, unknown>> }> };
    badLevel.runs[0]!.results[0]!['level'] = 'fatal';
    expect(errors(badLevel)).not.toEqual([]);
    expect(errors({ ...toSarif([finding]), $schema: 'not a uri' })).not.toEqual([]);
  });
});

describe.each(BACKENDS)('SARIF schema on %s', (kind) => {
  let fx: Fixture;
  beforeAll(async () => {
    // Several planted defects, so results span checks and severities.
    fx = await createFixture(kind, { sql: `${fixture('seed003.sql')}\nCREATE TABLE public.invoices (id int, tenant_id text);` });
    await fx.db.query(
      `CREATE POLICY wide ON public.orders FOR SELECT USING (true);
       DROP INDEX public.orders_tenant_idx;
       GRANT SELECT ON public.invoices TO ${fx.names.access.read};
       SELECT lo_create(424242); GRANT SELECT ON LARGE OBJECT 424242 TO PUBLIC;`,
    );
  });
  afterAll(async () => fx?.cleanup());

  it('a run with findings is valid, with one result per finding and a rule for each', async () => {
    const findings = await runDoctor({ db: fx.db, config: fx.config, names: fx.names, gatewayRole: fx.names.gateway });
    expect(findings.map((f) => f.id)).toEqual(expect.arrayContaining(['TG003', 'TG005', 'TG008', 'TG019', 'TG020']));
    const sarif = toSarif(findings) as { runs: Array<{ tool: { driver: { rules: Array<{ id: string }> } }; results: Array<{ ruleId: string }> }> };
    expect(errors(sarif)).toEqual([]);
    const run = sarif.runs[0]!;
    expect(run.results).toHaveLength(findings.length);
    const rules = new Set(run.tool.driver.rules.map((r) => r.id));
    expect(run.results.filter((r) => !rules.has(r.ruleId))).toEqual([]);
  });
});
