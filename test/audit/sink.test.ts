/**
 * The batched writer's buffer logic (no database: the writer is a function that records batches,
 * and can be made slow or failing on purpose). The real write path is covered against PGlite and
 * PostgreSQL in audit.test.ts and load.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/event.ts';
import { AuditSink } from '../../src/audit/sink.ts';

const ev = (i: number) => ({ request_id: `r${i}`, tenant: 't' }) as unknown as AuditEvent;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('AuditSink', () => {
  it('writes in batches of batch_size, in order, and close() flushes what is left', async () => {
    const batches: string[][] = [];
    const sink = new AuditSink({ write: async (b) => void batches.push(b.map((e) => e.request_id)), flushIntervalMs: 10_000, batchSize: 3, bufferLimit: 100 });
    for (let i = 0; i < 7; i++) await sink.record(ev(i));
    await sink.close();
    expect(batches.flat()).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
    expect(batches.every((b) => b.length <= 3)).toBe(true);
    expect(sink.stats).toMatchObject({ written: 7, buffered: 0, dropped: 0 });
  });

  it('never holds more than buffer_limit: a full buffer makes record() wait (backpressure) until a batch is written', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const written: string[] = [];
    const sink = new AuditSink({ write: async (b) => { await gate; written.push(...b.map((e) => e.request_id)); }, flushIntervalMs: 5, batchSize: 2, bufferLimit: 4 });
    const pending = Array.from({ length: 10 }, (_, i) => sink.record(ev(i)));
    await sleep(50);
    // The writer is stuck: 4 held, the other 6 wait.
    expect(sink.stats.buffered).toBe(4);
    expect(sink.stats.waiting).toBe(6);
    // The 4 that found room were queued at once (no promise); the 6 others wait.
    expect(pending.filter((p) => p === undefined)).toHaveLength(4);
    let settled = 0;
    for (const p of pending) void p?.then(() => settled++);
    await sleep(10);
    expect(settled).toBe(0);
    release();
    await Promise.all(pending);
    await sink.close();
    expect(written).toHaveLength(10);
    expect(new Set(written).size).toBe(10);
    expect(sink.stats.peak).toBeLessThanOrEqual(4);
    expect(sink.stats.waited).toBe(6);
  });

  it('a failed batch is kept and retried in order; nothing is lost while the database is away', async () => {
    let fail = 3;
    const written: string[] = [];
    const errors: number[] = [];
    const sink = new AuditSink({
      write: async (b) => {
        if (fail-- > 0) throw new Error('database away');
        written.push(...b.map((e) => e.request_id));
      },
      flushIntervalMs: 5,
      batchSize: 5,
      bufferLimit: 100,
      onError: (_e, pending) => errors.push(pending),
    });
    for (let i = 0; i < 12; i++) await sink.record(ev(i));
    await sink.close();
    expect(errors.length).toBe(3);
    expect(written).toEqual(Array.from({ length: 12 }, (_, i) => `r${i}`));
    expect(sink.stats.failedFlushes).toBe(3);
  });

  it('past max wait, an event is dropped and counted instead of growing memory', async () => {
    const dropped: string[] = [];
    const sink = new AuditSink({ write: () => new Promise(() => {}), flushIntervalMs: 5, batchSize: 1, bufferLimit: 2, maxWaitMs: 30, onDrop: (e) => dropped.push(e.request_id) });
    await Promise.all(Array.from({ length: 5 }, (_, i) => sink.record(ev(i))));
    expect(dropped).toEqual(['r2', 'r3', 'r4']);
    expect(sink.stats).toMatchObject({ dropped: 3, buffered: 2 });
  });
});
