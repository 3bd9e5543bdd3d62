/**
 * A job runner in a process of its own, for test/lifecycle/jobs/crash.test.ts: it runs the `count`
 * kind on JOB_DB until job JOB_ID has finished, and with KILL_AT=<point>[:<item>] it ends itself
 * with SIGKILL when the job reaches that point (claimed, effect, committed, before-finish), as a
 * crash would: no handler, no finally, no clean release of anything.
 */
import { openDatabase } from '../../../src/db/database.ts';
import { JobRunner } from '../../../src/lifecycle/jobs/runner.ts';
import { FINISHED_STATES, getJob } from '../../../src/lifecycle/jobs/store.ts';
import { countKind, registryWith } from './support.ts';

const env = process.env;
const [point, item] = (env['KILL_AT'] ?? '').split(':');
const leaseMs = Number(env['LEASE_MS'] ?? 1_000);
const kind = countKind({
  point: (name, i) => {
    if (name === point && (item === undefined || Number(item) === i)) process.kill(process.pid, 'SIGKILL');
  },
});
const db = await openDatabase(env['JOB_DB'] as string, { max: 4 });
const runner = new JobRunner({ db, registry: registryWith(kind), leaseMs, heartbeatMs: Math.floor(leaseMs / 4), pollMs: 50 }).start();
for (;;) {
  const j = await getJob(db, env['JOB_ID'] as string);
  if (!j || FINISHED_STATES.includes(j.state)) break;
  await new Promise((r) => setTimeout(r, 50));
}
await runner.stop();
await db.close();
process.stdout.write('finished\n');
