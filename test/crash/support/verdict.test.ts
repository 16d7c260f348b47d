import { describe, expect, it } from "vitest";
import { type AlertMsg, ackKept, escalationOnTime, judgeAlert, reachable } from "./verdict.js";

const none = { press: false, ack: false, window: false };

function alert(over: Partial<AlertMsg> = {}): AlertMsg {
  return {
    id: "a1",
    code: "EMERGENCY_CALL",
    priority: 1,
    deviceId: "pd-1",
    state: "active-unacknowledged",
    transition: "raised",
    raisedAt: 1000,
    updatedAt: 1000,
    count: 1,
    ackedBy: null,
    ackedAt: null,
    clearedAt: null,
    ...over,
  };
}

describe("crash verdict", () => {
  it("reachable states follow the lifecycle and only the allowed causes", () => {
    expect([...reachable("active-unacknowledged", none)]).toEqual(["active-unacknowledged"]);
    expect(reachable("active-unacknowledged", { ...none, ack: true })).toEqual(
      new Set(["active-unacknowledged", "active-acknowledged"]),
    );
    expect(reachable("active-acknowledged", { ...none, window: true })).toEqual(
      new Set(["active-acknowledged", "closed"]),
    );
    expect(reachable("active-acknowledged", { ...none, press: true }).has("closed")).toBe(false);
    expect(reachable("closed", { press: true, ack: true, window: true })).toEqual(new Set(["closed"]));
  });

  it("an alert gone after the restart is lost unless something the console had not seen closes it", () => {
    const pre = alert({ state: "active-acknowledged" });
    expect(judgeAlert(pre, undefined, none, 0).outcome).toBe("lost");
    expect(judgeAlert(pre, alert({ id: "a2" }), none, 0).outcome).toBe("lost");
    expect(judgeAlert(pre, undefined, { ...none, window: true }, 0).outcome).toBe("moved");
    expect(judgeAlert(pre, { ...pre }, none, 0).outcome).toBe("same");
  });

  it("a clear before the call window could end is a finding even when a window end is possible", () => {
    const pre = alert();
    const post = alert({ state: "cleared-unacknowledged", clearedAt: 5000 });
    expect(judgeAlert(pre, post, { ...none, window: true }, 11_000).outcome).toBe("lost");
    expect(judgeAlert(pre, { ...post, clearedAt: 11_000 }, { ...none, window: true }, 11_000).outcome).toBe(
      "moved",
    );
  });

  it("an answered acknowledgement must survive, or the alert closed by its window", () => {
    const pre = alert({ state: "active-acknowledged", ackedBy: "ops", ackedAt: 2000 });
    expect(ackKept("acknowledged", pre, { ...pre }, none)).toBe(true);
    expect(ackKept("acknowledged", pre, alert(), none)).toBe(false);
    expect(ackKept("acknowledged", pre, undefined, none)).toBe(false);
    expect(ackKept("acknowledged", pre, undefined, { ...none, window: true })).toBe(true);
    expect(ackKept("closed", alert({ state: "cleared-unacknowledged" }), undefined, none)).toBe(true);
  });

  it("escalations: within 1 s of the tick they were due, or of the gateway being back", () => {
    expect(escalationOnTime({ nextAt: 10_300, startedAt: 0, firedAt: 11_000 }).onTime).toBe(true);
    expect(escalationOnTime({ nextAt: 10_300, startedAt: 0, firedAt: 12_001 }).onTime).toBe(false);
    expect(escalationOnTime({ nextAt: 10_300, startedAt: 20_000, firedAt: 20_400 }).onTime).toBe(true);
    expect(escalationOnTime({ nextAt: 10_300, startedAt: 0, firedAt: 9_000 }).onTime).toBe(false);
    expect(escalationOnTime({ nextAt: 10_300, startedAt: 0, firedAt: null }).onTime).toBe(false);
  });
});
