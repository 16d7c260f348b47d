/**
 * Operators' roles (docs/security.md "Operator roles"): the table, the refusal (`forbidden`,
 * answered on the action's result topic, counted, logged), the broker's publish ACL, the config
 * field and its warning, and a reload that changes only a role.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { AlertEngine } from "./alerts/engine.js";
import { AccessPolicy } from "./broker/access.js";
import { ConfigError, validateConfig } from "./config/load.js";
import type { ConfigInput } from "./config/schema.js";
import { configWarnings } from "./config/warnings.js";
import { consoleSiteInfo } from "./console/site-info.js";
import { DeviceCommands } from "./device-commands.js";
import type { Logger, RateLimitedLog } from "./log.js";
import type { Publisher } from "./northbound/publisher.js";
import { type CommandRequest, roleActions, roleMay, roleTable } from "./operator-actions.js";
import { DEFAULT_ROLE, type OperatorRole } from "./operator-roles.js";
import { OperatorCommands, type OpsResult } from "./ops.js";
import { Registry } from "./registry.js";
import { planIsEmpty, planReload } from "./reload.js";
import { Counters } from "./stats.js";

const site = (operators: ConfigInput["operators"]): ConfigInput => ({
  site: { id: "s1", locale: "zh-CN" },
  operators,
  households: [{ id: "hh-1" }],
  devices: [{ id: "gas-1", model: "gd2", password: "pw", household: "hh-1" } as never],
});

describe("the role table", () => {
  it("viewer only reads (list), responder answers alerts, supervisor also changes service and commands devices", () => {
    expect(roleTable()).toEqual({
      viewer: ["list"],
      responder: ["ack", "shelve", "unshelve", "away", "list"],
      supervisor: ["ack", "shelve", "unshelve", "service", "away", "cmd", "list"],
    });
    // Without a role: everything, as before roles existed (existing sites keep working).
    expect(DEFAULT_ROLE).toBe("supervisor");
  });

  it("is the table docs/security.md shows", () => {
    const doc = readFileSync("docs/security.md", "utf8");
    const start = doc.indexOf("<!-- operator-roles:begin -->");
    const end = doc.indexOf("<!-- operator-roles:end -->");
    expect(start).toBeGreaterThan(0);
    const rows = doc
      .slice(start, end)
      .split("\n")
      .filter((l) => l.startsWith("| `"))
      .map((l) => l.split("|").map((c) => c.trim()));
    const header = doc
      .slice(start, end)
      .split("\n")
      .find((l) => l.startsWith("| action"))
      ?.split("|")
      .map((c) => c.trim());
    const roles = (header ?? []).slice(3, 6) as OperatorRole[];
    expect(roles).toEqual(["viewer", "responder", "supervisor"]);
    expect(rows.map((r) => r[1])).toEqual([
      "`ack`",
      "`shelve`",
      "`unshelve`",
      "`away`",
      "`service`",
      "`cmd`",
      "`list`",
    ]);
    for (const r of rows) {
      const action = (r[1] as string).replaceAll("`", "") as Parameters<typeof roleMay>[1];
      roles.forEach((role, i) => {
        expect({ action, role, may: r[3 + i] }).toEqual({
          action,
          role,
          may: roleMay(role, action) ? "yes" : "no",
        });
      });
    }
  });
});

/** An OperatorCommands whose engine, publisher and commands record what reaches them. */
function router() {
  const results: OpsResult[] = [];
  const engineCalls: string[] = [];
  const commands: { sent: CommandRequest[]; refused: [CommandRequest, string][] } = { sent: [], refused: [] };
  const warned: object[] = [];
  const engine = {
    acknowledge: (id: string) => {
      engineCalls.push(`ack ${id}`);
      return { ok: false, reason: "unknown-alert" };
    },
    shelve: () => {
      engineCalls.push("shelve");
      return { ok: false, reason: "unknown-alert" };
    },
    setOutOfService: () => {
      engineCalls.push("service");
      return { ok: false, reason: "already-in-service" };
    },
  } as unknown as AlertEngine;
  const publisher = { opsResult: (_op: string, r: OpsResult) => results.push(r) } as unknown as Publisher;
  const counters = new Counters();
  const log = {
    warn: (_k: string, _r: string, obj: object) => warned.push(obj),
  } as unknown as RateLimitedLog;
  const ops = new OperatorCommands(
    engine,
    { devices: new Map(), households: new Map() } as unknown as Registry,
    publisher,
    counters,
    log,
    null,
    null,
    null,
    {
      handle: (r) => commands.sent.push(r),
      refuse: (r, refusal) => commands.refused.push([r, refusal.reason]),
    },
    () => "zh-CN",
  );
  return { ops, results, engineCalls, commands, counters, warned };
}

const body = (o: object) => Buffer.from(JSON.stringify(o));

describe("the gateway refuses what the role does not allow", () => {
  it("a viewer's ack: answered forbidden on ops/result in Chinese, counted, logged; the engine never sees it", () => {
    const r = router();
    r.ops.handle("desk", "viewer", "ack", "A-1", null, body({ ref: "r-1", note: "x" }));
    expect(r.engineCalls).toEqual([]);
    expect(r.results).toEqual([
      expect.objectContaining({
        action: "ack",
        target: "A-1",
        ok: false,
        reason: "forbidden",
        detail: "role viewer may not ack (needs responder)",
        message: "无权限：查看员不能确认告警（需要值班员）",
        ref: "r-1",
        account: "desk",
      }),
    ]);
    expect(r.counters.rejected("operator", "forbidden")).toBe(1);
    expect(r.warned).toEqual([expect.objectContaining({ operator: "desk", role: "viewer", action: "ack" })]);
  });

  it("refuses before the body is read: a viewer's malformed request is forbidden, not bad-request", () => {
    const r = router();
    r.ops.handle("desk", "viewer", "shelve", "A-1", null, Buffer.from("not json"));
    expect(r.results[0]).toMatchObject({ reason: "forbidden", ref: null });
  });

  it("a responder's ack, shelve and away go on to the engine; out of service does not", () => {
    const r = router();
    r.ops.handle("desk", "responder", "ack", "A-1", null, Buffer.alloc(0));
    r.ops.handle("desk", "responder", "shelve", "A-1", null, body({ duration: "30m" }));
    r.ops.handle("desk", "responder", "service", "gas-1", null, body({ inService: false }));
    expect(r.engineCalls).toEqual(["ack A-1", "shelve"]);
    expect(r.results.map((x) => x.reason)).toEqual(["unknown-alert", "unknown-alert", "forbidden"]);
    expect(r.results[2]?.message).toBe("无权限：值班员不能停用或恢复设备（需要主管）");
  });

  it("a responder's device command is answered on its command result, never sent; a supervisor's is sent", () => {
    const r = router();
    r.ops.handle("desk", "responder", "cmd", "gas-1", "valve_open", body({ id: "c-1", by: "Wang" }));
    expect(r.commands.sent).toEqual([]);
    expect(r.commands.refused).toEqual([
      [
        expect.objectContaining({ deviceId: "gas-1", command: "valve_open", id: "c-1", by: "Wang" }),
        "forbidden",
      ],
    ]);
    expect(r.results).toEqual([]);
    r.ops.handle("boss", "supervisor", "cmd", "gas-1", "valve_open", body({ id: "c-2" }));
    expect(r.commands.sent).toEqual([expect.objectContaining({ id: "c-2", operator: "boss" })]);
  });

  it("a refused command's result says forbidden, in the site's language, and counts cmd-forbidden", () => {
    const published: object[] = [];
    const counters = new Counters();
    const commands = new DeviceCommands(
      { devices: new Map() } as unknown as Registry,
      {} as never,
      { commandResult: (_d: string, _c: string, r: object) => published.push(r) } as unknown as Publisher,
      counters,
      { info: () => {}, error: () => {} } as unknown as Logger,
      { now: () => 1000 } as never,
      () => "zh-CN",
    );
    const r = router();
    r.ops = new OperatorCommands(
      {} as AlertEngine,
      {} as Registry,
      {} as Publisher,
      counters,
      { warn: () => {} } as unknown as RateLimitedLog,
      null,
      null,
      null,
      commands,
    );
    r.ops.handle("desk", "responder", "cmd", "gas-1", "valve_open", body({ id: "c-1" }));
    expect(published).toEqual([
      {
        deviceId: "gas-1",
        command: "valve_open",
        id: "c-1",
        by: "desk",
        account: "desk",
        ok: false,
        error: "forbidden",
        message: "无权限：值班员不能向设备发送命令（需要主管）",
        at: 1000,
      },
    ]);
    expect(counters.rejected("operator", "cmd-forbidden")).toBe(1);
  });
});

describe("the broker's publish ACL reads the role", () => {
  const cfg = validateConfig(
    site([
      { name: "look", password: "p", role: "viewer" },
      { name: "desk", password: "p", role: "responder" },
      { name: "boss", password: "p", role: "supervisor" },
      { name: "old", password: "p" },
    ]),
  );
  const registry = new Registry(cfg, { onLost: () => {}, onWelfareDue: () => {} });
  const policy = new AccessPolicy("s1", registry);
  const op = (name: string) => ({ kind: "operator" as const, name });
  const flags = { retain: false, will: false };

  it("a request beyond the role is forbidden (answered, not closed); within it, an operator request", () => {
    expect(policy.authorizePublish(op("look"), "linli/s1/ack/A-1", flags)).toEqual({
      ok: true,
      kind: { kind: "forbidden", action: "ack", target: "A-1", command: null },
    });
    expect(policy.authorizePublish(op("desk"), "linli/s1/ack/A-1", flags)).toMatchObject({
      ok: true,
      kind: { kind: "operator", action: "ack" },
    });
    expect(policy.authorizePublish(op("desk"), "linli/s1/cmd/gas-1/valve_open", flags)).toMatchObject({
      kind: { kind: "forbidden", action: "cmd", command: "valve_open" },
    });
    expect(policy.authorizePublish(op("boss"), "linli/s1/cmd/gas-1/valve_open", flags)).toMatchObject({
      kind: { kind: "operator", action: "cmd" },
    });
    // No role: a supervisor.
    expect(policy.authorizePublish(op("old"), "linli/s1/service/gas-1", flags)).toMatchObject({
      kind: { kind: "operator" },
    });
  });

  it("retain and wills are refused first, as for every request; non-request topics stay closed", () => {
    expect(policy.authorizePublish(op("look"), "linli/s1/ack/A-1", { retain: true, will: false })).toEqual({
      ok: false,
      reason: "retain-not-allowed",
    });
    expect(policy.authorizePublish(op("look"), "linli/s1/ack/A-1", { retain: false, will: true })).toEqual({
      ok: false,
      reason: "will-not-allowed",
    });
    expect(policy.authorizePublish(op("look"), "linli/s1/alerts/events", flags)).toEqual({
      ok: false,
      reason: "topic-not-allowed",
    });
    // A viewer reads everything an operator reads.
    expect(policy.subscribe(op("look"), "linli/s1/#")).toBe(true);
  });

  it("a role changed by a reload applies to the next publish of a connected account", () => {
    const r = new Registry(cfg, { onLost: () => {}, onWelfareDue: () => {} });
    const p = new AccessPolicy("s1", r);
    expect(p.publish(op("desk"), "linli/s1/ack/A-1")).toMatchObject({ kind: "operator" });
    r.setOperators([{ name: "desk", password: "p", role: "viewer" }]);
    expect(p.publish(op("desk"), "linli/s1/ack/A-1")).toMatchObject({ kind: "forbidden" });
    // Gone from the file: nothing at all.
    r.setOperators([]);
    expect(p.publish(op("desk"), "linli/s1/ack/A-1")).toBeNull();
  });
});

describe("operators[].role in the site file", () => {
  it("an unknown role is a config error naming the field", () => {
    let err: unknown;
    try {
      validateConfig(site([{ name: "desk", password: "p", role: "admin" as never }]), "site.yaml");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems[0]?.path).toBe("operators[0].role");
    expect((err as ConfigError).message).toContain("site.yaml: operators[0].role:");
  });

  it("config check warns about each operator without a role, by its field", () => {
    const cfg = validateConfig(
      site([
        { name: "desk", password: "p", role: "responder" },
        { name: "old", password: "p" },
      ]),
    );
    const warnings = configWarnings(cfg, () => true).filter((w) => w.startsWith("operators"));
    expect(warnings).toEqual([
      expect.stringMatching(/^operators\[1\]\.role: operator old has no role and so is a supervisor: /),
    ]);
  });

  it("a reload that changes only a role is applied (not an empty plan), and disconnects nobody", () => {
    const before = validateConfig(site([{ name: "desk", password: "p", role: "supervisor" }]));
    const after = validateConfig(site([{ name: "desk", password: "p", role: "responder" }]));
    const plan = planReload(before, after);
    expect(plan.operators).toEqual({ added: [], removed: [], changed: [], roles: ["desk"] });
    expect(planIsEmpty(plan)).toBe(false);
    // Unset and supervisor are the same role: nothing to apply.
    const unset = validateConfig(site([{ name: "desk", password: "p" }]));
    expect(planReload(before, unset).operators.roles).toEqual([]);
  });

  it("the console is told the logged-in operator's role and the actions it may offer", () => {
    const cfg = validateConfig(site([{ name: "desk", password: "p", role: "responder" }]));
    expect(consoleSiteInfo(cfg, "desk").operator).toEqual({
      name: "desk",
      role: "responder",
      actions: roleActions("responder"),
    });
    expect(consoleSiteInfo(cfg, "gone").operator).toEqual({
      name: "gone",
      role: "viewer",
      actions: roleActions("viewer"),
    });
  });
});
