/**
 * The journal's health as the site sees it: whether the journal keeps its promise now (a reason
 * when it does not, which /readyz answers with), the P2 STORAGE_DEGRADED while it does not, and the
 * P2 STORAGE_DAMAGED_AT_START for damage that may have lost acknowledged state (docs/durability.md).
 */

import type { AlertEngine } from "./alerts/engine.js";
import type { Damage } from "./journal/journal.js";
import type { Logger } from "./log.js";
import { GATEWAY_SUBJECT } from "./state/recovery.js";

/** Damaged regions named in STORAGE_DAMAGED_AT_START's causes; the rest are counted. */
const MAX_DAMAGE_CAUSES = 10;

export class StorageHealth {
  /** Why the journal cannot keep its promise now (null: it can, or there is none). */
  private problemNow: string | null = null;
  private stopped = false;

  constructor(
    private readonly engine: Pick<AlertEngine, "contextFor">,
    private readonly log: Logger,
  ) {}

  get problem(): string | null {
    return this.problemNow;
  }

  get healthy(): boolean {
    return this.problemNow === null;
  }

  /**
   * The journal stopped (or resumed) keeping its promise: the gateway goes on
   * delivering alerts live, answers /readyz with 503 and the reason, and
   * raises a P2 STORAGE_DEGRADED about itself so somebody fixes the disk.
   */
  changed(problem: string | null): void {
    if (problem !== this.problemNow) this.apply(problem);
  }

  /** Sets the health even when unchanged: at start, it also clears a STORAGE_DEGRADED left open by the previous run. */
  apply(problem: string | null): void {
    const was = this.problemNow;
    this.problemNow = problem;
    this.engine.contextFor(GATEWAY_SUBJECT).condition("STORAGE_DEGRADED", problem !== null, {
      priority: 2,
      causes: problem === null ? [] : [problem],
      detail: problem === null ? {} : { problem },
    });
    if (problem === null && was !== null)
      this.log.warn("journal healthy again: alerts are kept across a restart");
  }

  /** The gateway is stopping: late damage is no longer alerted. */
  stop(): void {
    this.stopped = true;
  }

  /**
   * Damage found by the journal's delayed full open (a directory read-only or unreadable at start,
   * writable later): the same P2 as damage found at start. Not while stopping: the journal is
   * being closed, and the damage was logged.
   */
  reportLateDamage(damage: readonly Damage[]): void {
    if (!this.stopped) this.reportDamage(damage);
  }

  /**
   * Damage the journal found that may have lost acknowledged state (anything but a torn tail,
   * docs/durability.md "Damage"): a momentary P2 about the gateway, open until acknowledged; raised
   * again before that, it is a repeat (count + 1) naming the new damage.
   */
  reportDamage(damage: readonly Damage[]): void {
    const loss = damage.filter((d) => d.kind !== "torn-tail");
    if (loss.length === 0) return;
    const missingSegments = loss.reduce(
      (n, d) => n + (d.kind === "missing-segments" ? (d.count ?? 0) : 0),
      0,
    );
    const bytes = loss.reduce((n, d) => n + (d.kind === "missing-segments" ? 0 : d.bytes), 0);
    this.engine.contextFor(GATEWAY_SUBJECT).raise("STORAGE_DAMAGED_AT_START", {
      priority: 2,
      windowMs: 0,
      // Bounded: a badly damaged segment has thousands of regions; the log and the metric count them all.
      causes: [
        ...loss
          .slice(0, MAX_DAMAGE_CAUSES)
          .map((d) => `${d.kind}: ${d.file}${d.offset === undefined ? "" : ` at ${d.offset}`} (${d.reason})`),
        ...(loss.length > MAX_DAMAGE_CAUSES ? [`and ${loss.length - MAX_DAMAGE_CAUSES} more`] : []),
      ],
      detail: { kinds: [...new Set(loss.map((d) => d.kind))].join(","), bytes, missingSegments },
    });
  }
}
