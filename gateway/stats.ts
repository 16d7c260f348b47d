/**
 * Counters of messages and rejections per device model and reason. Reasons
 * are a small fixed vocabulary (see `RejectReason`), so the map is bounded by
 * models x reasons.
 */
export type RejectReason =
  | "unknown-device"
  | "bad-password"
  | "anonymous"
  | "topic-not-allowed"
  | "subscribe-not-allowed"
  | "oversized"
  | "empty"
  | "unknown-encoding"
  | "malformed"
  | "bad-field"
  // an integer outside the datasheet's range (devices/fields.ts)
  | "out-of-range"
  // a side field dropped from a message that was taken in (devices/fields.ts DroppedField)
  | "field-out-of-range"
  | "field-bad-type"
  // a side field the message did not carry at all (devices/fields.ts missingField)
  | "field-missing"
  | "duplicate-seq"
  | "bad-ack"
  | "unknown-alert"
  | "deferred-to-device"
  // one device's share of the P1 lane and its parking used up (gateway/ingest/mqtt-ingest.ts)
  | "p1-device-limit"
  | "action-not-supported"
  // operator requests refused (gateway/ops.ts, docs/topics.md "Operator results")
  | "bad-request"
  | "p1-not-shelvable"
  | "shelve-too-long"
  | "not-shelved"
  | "unknown-household"
  | "already-out-of-service"
  | "already-in-service"
  // queued before a reload removed the device (gateway/reload.ts)
  | "device-removed"
  // a device's reply naming none of its model's commands (gateway/consume.ts)
  | "reply-unknown-command"
  // limits (gateway/broker/limits.ts, login-guard.ts, rate.ts; docs/security.md "Limits")
  | "rate-limited"
  | "connect-too-large"
  | "packet-too-large"
  | "malformed-header"
  | "not-connect"
  | "login-timeout"
  | "address-banned"
  | "username-banned"
  | "address-rate-limited"
  | "ban-started"
  | "subscriptions-limit"
  | "inflight-limit";

export class Counters {
  private readonly messages = new Map<string, number>();
  private readonly rejections = new Map<string, number>();

  message(model: string): void {
    this.messages.set(model, (this.messages.get(model) ?? 0) + 1);
  }

  reject(model: string, reason: RejectReason | string): void {
    const k = `${model}\u0000${reason}`;
    this.rejections.set(k, (this.rejections.get(k) ?? 0) + 1);
  }

  rejected(model: string, reason: string): number {
    return this.rejections.get(`${model}\u0000${reason}`) ?? 0;
  }

  snapshot(): { messages: Record<string, number>; rejections: Record<string, Record<string, number>> } {
    const rejections: Record<string, Record<string, number>> = {};
    for (const [k, v] of this.rejections) {
      const [model, reason] = k.split("\u0000") as [string, string];
      rejections[model] ??= {};
      (rejections[model] as Record<string, number>)[reason] = v;
    }
    return { messages: Object.fromEntries(this.messages), rejections };
  }
}
