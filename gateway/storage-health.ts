/**
 * The journal's health as the site sees it: whether the journal keeps its promise now (a reason
 * when it does not, which /readyz answers with), the P2 STORAGE_DEGRADED while it does not, and the
 * P2 STORAGE_DAMAGED_AT_START for damage that may have lost acknowledged state (docs/durability.md).
 */

import type { AlertEngine } from "./alerts/engine.js";
import { DAMAGE_KINDS, type FoundDamage } from "./journal/journal.js";
import type { Logger } from "./log.js";
import { GATEWAY_SUBJECT } from "./state/recovery.js";

/** Damages named in STORAGE_DAMAGED_AT_START's causes; the rest are counted ("and N more"). */
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
  reportLateDamage(found: FoundDamage): void {
    if (!this.stopped) this.reportDamage(found);
  }

  /**
   * Damage the journal found that may have lost acknowledged state (anything but a torn tail,
   * docs/durability.md "Damage"): a momentary P2 about the gateway, open until acknowledged; raised
   * again before that, it is a repeat (count + 1) naming the new damage. Its causes name the first
   * MAX_DAMAGE_CAUSES listed and count the rest; its detail sums all of it (the totals by kind: the
   * journal lists only the first damages of thousands).
   */
  reportDamage(found: FoundDamage): void {
    const byKind = found.damageByKind;
    const lossKinds = DAMAGE_KINDS.filter((k) => k !== "torn-tail" && byKind[k].count > 0);
    if (lossKinds.length === 0) return;
    const total = lossKinds.reduce((n, k) => n + byKind[k].count, 0);
    const named = found.damage.filter((d) => d.kind !== "torn-tail").slice(0, MAX_DAMAGE_CAUSES);
    // Kinds in the order the listed damage names them (by file), then any only counted.
    const kinds = [...new Set([...named.map((d) => d.kind), ...lossKinds])];
    this.engine.contextFor(GATEWAY_SUBJECT).raise("STORAGE_DAMAGED_AT_START", {
      priority: 2,
      windowMs: 0,
      causes: [
        ...named.map(
          (d) => `${d.kind}: ${d.file}${d.offset === undefined ? "" : ` at ${d.offset}`} (${d.reason})`,
        ),
        ...(total > named.length ? [`and ${total - named.length} more`] : []),
      ],
      detail: {
        kinds: kinds.join(","),
        bytes: byKind["corrupt-record"].bytes + byKind.snapshot.bytes,
        missingSegments: byKind["missing-segments"].segments,
      },
    });
  }
}

/** What the journal found at open, kept as it was then (a delayed full open adds to the journal's). */
export function copyDamage(found: FoundDamage): FoundDamage {
  return {
    damaged: found.damaged,
    damage: [...found.damage],
    damageByKind: structuredClone(found.damageByKind),
  };
}
