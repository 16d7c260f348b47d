/**
 * A site file refused at a start while a last good copy exists (config/last-good.ts): the gateway
 * runs on the copy, and says so until a valid file is applied: /readyz's note, a counted start,
 * and a P2 CONFIG_REFUSED about itself naming the file and each problem (docs/reload.md).
 */
import type { AlertEngine } from "./alerts/engine.js";
import type { Logger } from "./log.js";
import { GATEWAY_SUBJECT } from "./state/recovery.js";

/** Problems named in CONFIG_REFUSED's causes; the rest are counted ("and N more"). */
const MAX_CAUSES = 10;

export interface Refusal {
  /** The refused site file. */
  file: string;
  /** Each problem, as `linli config check` words it. */
  problems: string[];
  /** The copy run instead. */
  lastGood: string;
}

export class ConfigRefusal {
  private refusedNow: Refusal | null = null;
  /** Starts on the last good copy since this process started (0 or 1; a counter for /metrics). */
  private starts = 0;

  constructor(
    private readonly engine: Pick<AlertEngine, "contextFor" | "closeCode">,
    private readonly log: Logger,
  ) {}

  get refused(): Refusal | null {
    return this.refusedNow;
  }

  get refusedStarts(): number {
    return this.starts;
  }

  /** This start runs on the last good copy: raises (or keeps, from the last run) CONFIG_REFUSED. */
  startedOnLastGood(r: Refusal): void {
    this.refusedNow = r;
    this.starts++;
    this.engine.contextFor(GATEWAY_SUBJECT).condition("CONFIG_REFUSED", true, {
      priority: 2,
      causes: [
        ...r.problems.slice(0, MAX_CAUSES),
        ...(r.problems.length > MAX_CAUSES ? [`and ${r.problems.length - MAX_CAUSES} more`] : []),
      ],
      detail: { file: r.file, lastGood: r.lastGood },
    });
  }

  /**
   * A valid site file was applied (`at` a start or a reload): a CONFIG_REFUSED open is closed,
   * saying which (a start is no reload: an operator reading "reloaded" looks for a reload).
   */
  applied(file: string, at: "start" | "reload"): void {
    const was = this.refusedNow;
    this.refusedNow = null;
    if (
      this.engine.closeCode(GATEWAY_SUBJECT.id, "CONFIG_REFUSED", `valid site file applied: ${file}`, {
        corrected: at,
      }) ||
      was
    )
      this.log.warn(
        { config: file },
        "site file valid again: no longer running on the last good configuration",
      );
  }
}
