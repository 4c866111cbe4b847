// The live figures: every two seconds, `/v1/stats`, `/metrics` and the
// pending conflicts, kept for the last five minutes. Rates (operations and
// deliveries per second) are the growth of the server's counters between
// two samples over the time between them.

import { ConsoleApi, describe, type Stats } from './api.js';

/** One reading of the server. */
export interface Sample {
  /** When it was taken (ms since the epoch). */
  at: number;
  stats: Stats;
  /** Operations handled per second since the previous sample. */
  operationsPerSec: number;
  /** Changes pushed to subscribers per second since the previous sample; `null` when unknown. */
  deliveriesPerSec: number | null;
  /** Pending conflicts (at most `PENDING_MAX`). */
  pendingConflicts: number;
}

export const INTERVAL_MS = 2_000;
const KEEP_MS = 5 * 60_000;
/** Pending conflicts counted; more reads as "1000+". */
export const PENDING_MAX = 1_000;

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}

/** Polls the server and tells its listeners of every new sample. */
export class Sampler {
  readonly samples: Sample[] = [];
  /** Why the last poll failed, or `null`. */
  failure: string | null = null;
  private readonly listeners = new Set<() => void>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private previous: { at: number; operations: number; deliveries: number | null } | undefined;
  /** Bumped by every start, so a poll of an earlier run schedules no more. */
  private run = 0;

  constructor(private readonly api: ConsoleApi) {}

  start(): void {
    this.stop();
    void this.poll(this.run);
  }

  stop(): void {
    this.run += 1;
    clearTimeout(this.timer);
  }

  /** Calls `listener` after every poll; returns the unsubscribe. */
  listen(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get latest(): Sample | undefined {
    return this.samples[this.samples.length - 1];
  }

  private async poll(run: number): Promise<void> {
    try {
      const [stats, metrics, pending] = await Promise.all([
        this.api.stats(),
        this.api.metrics().catch(() => undefined),
        this.api.conflicts('pending', PENDING_MAX),
      ]);
      const at = Date.now();
      const operations = total(stats.operations);
      const deliveries = metrics?.get('sync_deliveries_total') ?? null;
      const previous = this.previous;
      const secs = previous ? Math.max((at - previous.at) / 1000, 0.001) : 0;
      const rate = (now: number, before: number | null | undefined) =>
        previous && before !== null && before !== undefined ? Math.max(0, now - before) / secs : 0;
      this.samples.push({
        at,
        stats,
        operationsPerSec: rate(operations, previous?.operations),
        deliveriesPerSec: deliveries === null ? null : rate(deliveries, previous?.deliveries),
        pendingConflicts: pending.conflicts.length,
      });
      this.previous = { at, operations, deliveries };
      while (this.samples.length > 0 && this.samples[0]!.at < at - KEEP_MS) this.samples.shift();
      this.failure = null;
    } catch (error) {
      this.failure = describe(error);
    }
    if (run !== this.run) return;
    for (const listener of this.listeners) listener();
    this.timer = setTimeout(() => void this.poll(run), INTERVAL_MS);
  }
}
