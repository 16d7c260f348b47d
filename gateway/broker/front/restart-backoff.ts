/**
 * The device listener worker's restart backoff (worker-supervisor.ts): a worker that died (a bug) is
 * replaced after FIRST_MS, doubled at every death in a row up to MAX_MS (devices reconnect within
 * seconds, and a crash loop costs a restart every half minute at most). A worker that served
 * RESET_MS starts the count over. How long it served is measured on the monotonic clock: a step of
 * the wall clock forward (NTP) must not reset a crash loop's backoff, nor one back keep it long.
 */
const FIRST_MS = 500;
const MAX_MS = 30_000;
const RESET_MS = 60_000;

export class RestartBackoff {
  private delayMs = FIRST_MS;
  private upSince: number;

  /** `now`: monotonic milliseconds. */
  constructor(private readonly now: () => number = () => performance.now()) {
    this.upSince = now();
  }

  /** The delay before the next restart (ms). */
  get ms(): number {
    return this.delayMs;
  }

  /** A worker went into service. */
  up(): void {
    this.upSince = this.now();
  }

  /** The worker in service died: a count started over if it served long enough. */
  died(): void {
    if (this.now() - this.upSince >= RESET_MS) this.delayMs = FIRST_MS;
  }

  /** A restart scheduled: its delay, and the next one's doubled. */
  take(): number {
    const delay = this.delayMs;
    this.delayMs = Math.min(delay * 2, MAX_MS);
    return delay;
  }
}
