/**
 * Operators' messages: acknowledgements on `linli/<site>/ack/<alertId>` with
 * a JSON body `{"by":"<name>","note":"..."}`. Acknowledging a call or a fall
 * tells the pendant (downlink `ack_call`), so the resident hears that someone saw it.
 */
import type { AlertEngine } from "./alerts/engine.js";
import type { RateLimitedLog } from "./log.js";
import type { Publisher } from "./northbound/publisher.js";
import type { Registry } from "./registry.js";
import type { Counters } from "./stats.js";

const MAX_NOTE = 500;

export type AckResult = "acknowledged" | "bad-ack" | "unknown-alert" | "already-acknowledged";

export class OperatorCommands {
  constructor(
    private readonly engine: AlertEngine,
    private readonly registry: Registry,
    private readonly publisher: Publisher,
    private readonly counters: Counters,
    private readonly log: RateLimitedLog,
  ) {}

  ack(operator: string, alertId: string, payload: Buffer): AckResult {
    let by = operator;
    let note: string | null = null;
    if (payload.length > 0) {
      let body: unknown;
      try {
        body = JSON.parse(payload.toString("utf8"));
      } catch {
        return this.refuse(operator, "bad-ack", "acknowledgement is not JSON");
      }
      if (typeof body !== "object" || body === null || Array.isArray(body)) {
        return this.refuse(operator, "bad-ack", "acknowledgement must be a JSON object");
      }
      const b = body as { by?: unknown; note?: unknown };
      if (b.by !== undefined) {
        if (typeof b.by !== "string" || b.by.length === 0 || b.by.length > 64) {
          return this.refuse(operator, "bad-ack", "by must be a name of 1 to 64 characters");
        }
        by = b.by;
      }
      if (b.note !== undefined) {
        if (typeof b.note !== "string" || b.note.length > MAX_NOTE) {
          return this.refuse(operator, "bad-ack", `note must be a string of at most ${MAX_NOTE} characters`);
        }
        note = b.note;
      }
    }
    const outcome = this.engine.acknowledge(alertId, by, note);
    if (!outcome.ok) {
      if (outcome.reason === "unknown-alert")
        return this.refuse(operator, "unknown-alert", `no open alert ${alertId}`);
      return "already-acknowledged";
    }
    const alert = outcome.alert;
    if (alert.code === "EMERGENCY_CALL" || alert.code === "FALL_DETECTED") {
      const device = this.registry.devices.get(alert.subject.id);
      if (device) this.publisher.downlink(device, { cmd: "ack_call", alertId: alert.id });
    }
    return "acknowledged";
  }

  private refuse(operator: string, reason: "bad-ack" | "unknown-alert", detail: string): AckResult {
    this.counters.reject("operator", reason);
    this.log.warn(operator, reason, { operator, detail }, "acknowledgement refused");
    return reason;
  }
}
