import { describe, expect, it } from "vitest";
import {
  type CommandRequest,
  OPERATOR_ACTIONS,
  type OperatorHandlers,
  type OperatorRequest,
  operatorTopic,
  operatorTopicFilters,
  type RefusedRequest,
} from "./operator-actions.js";

/** Records what the table hands to its handlers. */
function recorder() {
  const calls: [string, unknown][] = [];
  const h: OperatorHandlers = {
    ack: (r) => calls.push(["ack", r]),
    shelve: (r) => calls.push(["shelve", r]),
    unshelve: (r) => calls.push(["unshelve", r]),
    service: (r) => calls.push(["service", r]),
    away: (r) => calls.push(["away", r]),
    cmd: (r) => calls.push(["cmd", r]),
    list: (r) => calls.push(["list", r]),
    refused: (r) => calls.push(["refused", r]),
  };
  return { h, calls };
}

const run = (action: keyof typeof OPERATOR_ACTIONS, payload: string, command: string | null = null) => {
  const { h, calls } = recorder();
  OPERATOR_ACTIONS[action].run(h, "op1", "t-1", command, Buffer.from(payload));
  expect(calls).toHaveLength(1);
  return calls[0] as [string, OperatorRequest<Record<string, unknown>> | RefusedRequest | CommandRequest];
};

describe("operator action table", () => {
  it("parses each action's request with its schema and hands it to its handler", () => {
    expect(run("ack", "")).toEqual([
      "ack",
      { operator: "op1", target: "t-1", ref: null, by: "op1", fields: { note: null } },
    ]);
    expect(run("shelve", '{"by":"Li","duration":"30m","reason":"works","ref":"r1"}')).toEqual([
      "shelve",
      {
        operator: "op1",
        target: "t-1",
        ref: "r1",
        by: "Li",
        fields: { reason: "works", duration: 1_800_000 },
      },
    ]);
    expect(run("service", '{"inService":false}')[1]).toMatchObject({ fields: { inService: false } });
    expect(run("away", '{"away":true,"until":"2030-01-01T00:00:00Z"}')[1]).toMatchObject({
      fields: { away: true, until: "2030-01-01T00:00:00Z" },
    });
    expect(run("cmd", '{"id":7,"by":"Wang"}', "reset")).toEqual([
      "cmd",
      { operator: "op1", deviceId: "t-1", command: "reset", id: 7, by: "Wang" },
    ]);
    // A device command's body is never refused: what cannot be echoed is left out.
    expect(run("cmd", "not json", "reset")[1]).toMatchObject({ id: null, by: "op1" });
    // JSON that is no object: nothing to echo (before, `null` threw out of the broker's publish hook).
    expect(run("cmd", "null", "reset")[1]).toMatchObject({ id: null, by: "op1" });
    expect(run("cmd", "5", "reset")[1]).toMatchObject({ id: null, by: "op1" });
  });

  it("refuses with the first problem, in schema order, echoing ref when the body had one", () => {
    expect(run("shelve", "")[1]).toMatchObject({
      refusal: { reason: "bad-request", detail: "a JSON object is required" },
      ref: null,
    });
    expect(run("shelve", '{"by":"","duration":"x","ref":"r2"}')[1]).toMatchObject({
      action: "shelve",
      ref: "r2",
      refusal: { reason: "bad-request", detail: "by must be a name of 1 to 64 characters" },
    });
    expect(run("shelve", '{"reason":5,"duration":"x"}')[1]).toMatchObject({
      refusal: { detail: "reason must be a string of at most 500 characters" },
    });
    expect(run("service", '{"inService":"no"}')[1]).toMatchObject({
      refusal: { reason: "bad-request", detail: "inService must be true or false" },
    });
    // ack keeps its own counted reason for any malformed request.
    expect(run("ack", "[1]")[1]).toMatchObject({
      refusal: { reason: "bad-ack", detail: "must be a JSON object" },
    });
  });

  it("a shelve's duration: missing, malformed and zero are each said as they are, naming the forms", () => {
    const refusal = (body: string) => (run("shelve", body)[1] as RefusedRequest).refusal;
    expect(refusal('{"by":"Li"}')).toMatchObject({
      path: "duration",
      detail:
        'duration is required: seconds (a number such as 1800), or a number with ms, s, m, h or d ("30m", "2h")',
      zh: 'duration 为必填：秒数（如 1800），或数字加 ms、s、m、h、d（如 "30m"、"2h"）',
    });
    // Before, "abc" was answered as if no duration had been sent.
    expect(refusal('{"by":"Li","duration":"abc"}')).toMatchObject({
      path: "duration",
      detail:
        'duration "abc" is not a duration: seconds (a number such as 1800), or a number with ms, s, m, h or d ("30m", "2h")',
      zh: 'duration "abc" 不是有效的时长：应为秒数（如 1800），或数字加 ms、s、m、h、d（如 "30m"、"2h"）',
    });
    expect(refusal('{"by":"Li","duration":true}').detail).toMatch(/^duration true is not a duration: /);
    expect(refusal('{"by":"Li","duration":"0m"}').detail).toMatch(/^duration must be more than 0: /);
  });

  it("a refusal is the one shape: its reason, the field it is about, and words in Chinese too", () => {
    const [, r] = run("shelve", '{"duration":"soon"}') as [string, RefusedRequest];
    expect(r.refusal).toMatchObject({ rejected: true, reason: "bad-request", path: "duration" });
    expect(r.refusal.zh).toMatch(/[\u4e00-\u9fff]/);
    expect((run("ack", "{]")[1] as RefusedRequest).refusal).toMatchObject({
      reason: "bad-ack",
      detail: "not JSON",
    });
  });

  it("an operator's JSON is never taken for a refusal of the gateway's own", () => {
    const [handler, r] = run("away", '{"away":true,"until":{"rejected":true,"reason":"x","detail":"y"}}');
    // Handed to the handler, which refuses a `until` that is not a time (bad-request, counted).
    expect(handler).toBe("away");
    expect(Number.isNaN((r as OperatorRequest<{ until: unknown }>).fields.until)).toBe(true);
  });

  it("names the topic shape of every action, for access control and the upstream bridge", () => {
    const id = (s: string | undefined) => s !== undefined && s.length > 0;
    expect(operatorTopic(["ack", "a-1"], id)).toEqual({ action: "ack", target: "a-1", command: null });
    expect(operatorTopic(["cmd", "d-1", "reset"], id)).toEqual({
      action: "cmd",
      target: "d-1",
      command: "reset",
    });
    expect(operatorTopic(["cmd", "d-1"], id)).toBeNull();
    expect(operatorTopic(["ack", "a-1", "x"], id)).toBeNull();
    expect(operatorTopic(["toString", "a-1"], id)).toBeNull();
    expect(operatorTopic(["ack", ""], id)).toBeNull();
    expect(operatorTopicFilters("linli/s/")).toEqual([
      "linli/s/ack/+",
      "linli/s/shelve/+",
      "linli/s/unshelve/+",
      "linli/s/service/+",
      "linli/s/away/+",
      "linli/s/cmd/+/+",
      "linli/s/list/+",
    ]);
  });
});
