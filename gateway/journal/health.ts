/**
 * The journal's health: whether it still promises that state survives a restart or power cut, the
 * one log line and onHealthChange call per degraded episode, and the retry timer that tries to
 * restore durability every retryMs. What a retry attempts (a fresh segment and snapshot, the full
 * open of a directory first opened read-only) is the journal's (journal.ts retry()); what fails
 * and why is reported here through degrade().
 */
import type { Logger } from "pino";

export interface JournalHealth {
  ok: boolean;
  reason: string | null;
  since: number;
}

export interface HealthOptions {
  dir: string;
  retryMs: number;
  now: () => number;
  log: Logger | undefined;
  onChange: ((h: JournalHealth) => void) | undefined;
  /** One attempt to restore durability, called every retryMs while degraded. */
  retry: () => void;
}

export class Health {
  /** While degraded, how often a retry runs. */
  readonly retryMs: number;
  private readonly dir: string;
  private readonly now: () => number;
  private readonly log: Logger | undefined;
  private readonly onChange: ((h: JournalHealth) => void) | undefined;
  private readonly retry: () => void;
  private state: JournalHealth;
  private retryTimer: NodeJS.Timeout | null = null;
  /** Closed, or the lock lost: nothing is retried any more. */
  private retriesOver = false;

  constructor(opts: HealthOptions) {
    this.dir = opts.dir;
    this.retryMs = opts.retryMs;
    this.now = opts.now;
    this.log = opts.log;
    this.onChange = opts.onChange;
    this.retry = opts.retry;
    this.state = { ok: true, reason: null, since: this.now() };
  }

  get ok(): boolean {
    return this.state.ok;
  }

  get reason(): string | null {
    return this.state.reason;
  }

  /** A copy: callers cannot change the journal's state. */
  get current(): JournalHealth {
    return { ...this.state };
  }

  set(ok: boolean, reason: string | null): void {
    this.state = { ok, reason, since: this.now() };
    if (this.onChange === undefined) return;
    try {
      this.onChange({ ...this.state });
    } catch (err) {
      this.log?.error({ err: (err as Error).message }, "journal onHealthChange threw");
    }
  }

  degrade(reason: string): void {
    if (this.state.ok) {
      this.log?.error(
        { reason, dir: this.dir, retryMs: this.retryMs },
        `journal degraded (${reason}): can no longer promise that state survives a restart or power cut; ` +
          "records since now (alert states, acknowledgements, undelivered upstream messages) are kept in memory " +
          "only until the disk takes writes again; retrying, a fresh snapshot will restore durability",
      );
    }
    // One notification per degraded episode: a failing retry does not re-announce it.
    if (this.state.ok) this.set(false, reason);
    this.scheduleRetry();
  }

  scheduleRetry(): void {
    if (this.retryTimer !== null || this.retriesOver) return;
    this.retryTimer = setTimeout(this.fire, this.retryMs);
    this.retryTimer.unref();
  }

  /** The journal closed or lost its lock: no retry from now on. */
  stopRetries(): void {
    this.retriesOver = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private readonly fire = (): void => {
    this.retryTimer = null;
    this.retry();
  };
}
