import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import { isRejection, type Rejection, systemClock } from "../core/index.js";
import { modbusWrite } from "../devices/commands.js";
import { gd2 } from "../devices/gd2.js";
import { lv4 } from "../devices/lv4.js";
import { mfs8 } from "../devices/mfs8.js";
import { COMMANDS_PER_DEVICE, WINDOW_MS } from "./command-rate.js";
import { commandFailureText } from "./content/command-text.js";
import { commandResultFields, DeviceCommands } from "./device-commands.js";
import type { Publisher } from "./northbound/publisher.js";
import { noDevice } from "./operator-actions.js";
import type { DeviceEntry, Registry } from "./registry.js";
import type { ModbusSouthbound } from "./southbound/modbus.js";
import { Counters } from "./stats.js";

/** The refusal a check gave (the test fails if it let the command through). */
function refusal(x: object): Rejection {
  if (!isRejection(x)) throw new Error("not refused");
  return x;
}

describe("a command's result from the one refusal shape (docs/topics.md)", () => {
  it("keeps the published fields (`error`, `known`, `expected`) and adds `message` in the site's language", () => {
    const badValue = refusal(modbusWrite(lv4, "set_low", 5));
    expect(commandResultFields(badValue, lv4, "en")).toEqual({
      ok: false,
      error: "bad-value",
      expected: 'an integer 100..65535 as "value"',
      message: 'an integer 100..65535 as "value"',
    });
    expect(commandResultFields(badValue, lv4, "zh-CN")).toMatchObject({
      message: '"value" 须为 100 到 65535 的整数',
    });
    expect(commandResultFields(refusal(modbusWrite(mfs8, "launch", undefined)), mfs8, "zh-CN")).toEqual({
      ok: false,
      error: "unknown-command",
      known: ["silence", "reset", "test_on", "test_off"],
      message: "MFS-8 没有 launch 命令；可用：silence、reset、test_on、test_off",
    });
    expect(commandResultFields(noDevice("d-9"), undefined, "en")).toEqual({
      ok: false,
      error: "unknown-device",
      message: "no device d-9",
    });
  });

  it("passes what the bus made of a command through as it is", () => {
    const timeout = { ok: false, error: "timeout" } as const;
    expect(commandResultFields(timeout, mfs8, "zh-CN")).toBe(timeout);
    expect(commandResultFields({ ok: true }, mfs8, "en")).toEqual({ ok: true });
  });
});

describe("automatic commands (a device's rules, e.g. the GD-2 shut-off)", () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  beforeAll(() => process.on("unhandledRejection", onUnhandled));
  afterAll(() => process.off("unhandledRejection", onUnhandled));
  afterEach(() => {
    unhandled.length = 0;
  });

  /** A Modbus device whose bus does `command`; results published recorded (the first `failPublishes` throw). */
  function setup(
    command: () => Promise<never> | Promise<{ ok: true } | { ok: false; error: "timeout" }>,
    failPublishes = 0,
  ) {
    const results: Array<{ topic: string; result: Record<string, unknown> }> = [];
    const publisher = {
      commandResult(deviceId: string, cmd: string, result: Record<string, unknown>) {
        if (failPublishes-- > 0) throw new Error("publisher failed");
        results.push({ topic: `${deviceId}/${cmd}`, result });
      },
    } as unknown as Publisher;
    const counters = new Counters();
    const commands = new DeviceCommands(
      { devices: new Map() } as unknown as Registry,
      { command } as unknown as ModbusSouthbound,
      publisher,
      counters,
      pino({ level: "silent" }),
      systemClock,
      () => "en",
      (id, cmd, f) => commandFailureText("en", `pump room ${id}`, cmd, f),
    );
    const device = { id: "v-1", profile: { ...lv4, transport: "modbus" } } as unknown as DeviceEntry;
    return { commands, device, results, counters };
  }

  /** Until every pending callback and a macrotask ran (unhandled rejections are reported by then). */
  const settle = () => new Promise((r) => setTimeout(r, 0));

  it("a request that rejects publishes a failed result, counted, with no unhandled rejection", async () => {
    const { commands, device, results, counters } = setup(() => Promise.reject(new Error("prepare failed")));
    expect(commands.automatic(device, "valve_close")).toBe(true);
    await settle();
    await settle();
    expect(results).toEqual([
      {
        topic: "v-1/valve_close",
        result: expect.objectContaining({
          deviceId: "v-1",
          by: "gateway",
          ok: false,
          error: "internal",
          message:
            "pump room v-1: command valve_close failed: the gateway failed (logged); the device may have received it",
        }),
      },
    ]);
    expect(counters.rejected("automatic", "cmd-internal")).toBe(1);
    expect(unhandled).toEqual([]);
  });

  it("one the journal kept for a device a start found gone: its loss told by the gateway, counted, named by the kept model", () => {
    const { results, counters } = setup(() => Promise.resolve({ ok: true }));
    const named = new DeviceCommands(
      { devices: new Map() } as unknown as Registry,
      {} as unknown as ModbusSouthbound,
      {
        commandResult: (deviceId: string, cmd: string, result: Record<string, unknown>) =>
          results.push({ topic: `${deviceId}/${cmd}`, result }),
      } as unknown as Publisher,
      counters,
      pino({ level: "silent" }),
      systemClock,
      () => "en",
      (id, cmd, f, model) => commandFailureText("en", `${model ?? "device"} ${id}`, cmd, f),
    );
    const hooks = named.revive(
      { id: "k-1", model: "gd2" },
      { kind: "automatic", command: "valve_close", id: "v-9", by: "gateway" },
    );
    hooks.lost?.("device-removed");
    expect(results).toEqual([
      {
        topic: "k-1/valve_close",
        result: expect.objectContaining({
          deviceId: "k-1",
          id: "v-9",
          by: "gateway",
          ok: false,
          sent: false,
          error: "device-removed",
          message:
            "gd2 k-1: command valve_close failed: the device was removed from the configuration; not sent",
        }),
      },
    ]);
    expect(counters.rejected("automatic", "cmd-device-removed")).toBe(1);
  });

  it("a command the bus got no answer to says so in words, naming the device (MQTT-only operators)", async () => {
    const { commands, device, results } = setup(() => Promise.resolve({ ok: false, error: "timeout" }));
    commands.automatic(device, "set_low");
    await settle();
    expect(results[0]?.result).toMatchObject({
      ok: false,
      error: "timeout",
      message:
        "pump room v-1: command set_low failed: the device did not answer (timed out); check its power and the bus wiring",
    });
  });

  it("a publisher that throws on the result: answered once (no second `internal`), counted once, nothing unhandled", async () => {
    const { commands, device, results, counters } = setup(() => Promise.resolve({ ok: true }), 1);
    commands.automatic(device, "valve_close");
    await settle();
    await settle();
    // The write succeeded: an `internal` result would tell the operator it may not have.
    expect(results).toEqual([]);
    expect(counters.rejected("automatic", "cmd-internal")).toBe(0);
    expect(unhandled).toEqual([]);
  });

  /** A GD-2 (MQTT) whose downlink goes out; the first `failPublishes` results throw. */
  function mqttSetup(failPublishes: number) {
    const results: Array<Record<string, unknown>> = [];
    const downlinks: object[] = [];
    const publisher = {
      downlink(_device: DeviceEntry, message: object) {
        downlinks.push(message);
        return true;
      },
      commandResult(_deviceId: string, _cmd: string, result: Record<string, unknown>) {
        if (failPublishes-- > 0) throw new Error("publisher failed");
        results.push(result);
      },
    } as unknown as Publisher;
    const counters = new Counters();
    const commands = new DeviceCommands(
      { devices: new Map() } as unknown as Registry,
      {} as unknown as ModbusSouthbound,
      publisher,
      counters,
      pino({ level: "silent" }),
      systemClock,
      () => "en",
    );
    const device = { id: "gas-1", profile: gd2 } as unknown as DeviceEntry;
    return { commands, device, results, downlinks, counters };
  }

  it("MQTT: the downlink went out but its result cannot be published: true (GD-2 must not send it again), answered once", () => {
    const { commands, device, results, downlinks, counters } = mqttSetup(1);
    expect(commands.automatic(device, "valve_close")).toBe(true);
    expect(downlinks).toHaveLength(1);
    expect(results).toEqual([]); // no second, `internal`, result
    expect(counters.rejected("automatic", "cmd-internal")).toBe(0);
  });

  it("MQTT: a refused command whose result cannot be published is counted once, by its reason", () => {
    const { commands, device, results, counters } = mqttSetup(1);
    expect(commands.automatic(device, "launch")).toBe(false);
    expect(results).toEqual([]);
    expect(counters.rejected("automatic", "cmd-unknown-command")).toBe(1);
    expect(counters.rejected("automatic", "cmd-internal")).toBe(0);
  });

  it("MQTT: with the publisher working, one result and the send's outcome", () => {
    const { commands, device, results } = mqttSetup(0);
    expect(commands.automatic(device, "valve_close")).toBe(true);
    expect(results).toEqual([
      expect.objectContaining({ deviceId: "gas-1", by: "gateway", ok: true, sent: true }),
    ]);
  });
});

describe("operators' commands per device are bounded (command-rate.ts)", () => {
  function setup(locale: "zh-CN" | "en" = "en") {
    const results: Array<Record<string, unknown>> = [];
    const downlinks: Array<[string, object]> = [];
    const publisher = {
      downlink(device: DeviceEntry, message: object) {
        downlinks.push([device.id, message]);
        return "sent";
      },
      commandResult(_deviceId: string, _cmd: string, result: Record<string, unknown>) {
        results.push(result);
      },
    } as unknown as Publisher;
    const counters = new Counters();
    const clock = new FakeClock();
    const gas1 = { id: "gas-1", profile: gd2 } as unknown as DeviceEntry;
    const gas2 = { id: "gas-2", profile: gd2 } as unknown as DeviceEntry;
    const commands = new DeviceCommands(
      { devices: new Map([gas1, gas2].map((d) => [d.id, d])) } as unknown as Registry,
      {} as unknown as ModbusSouthbound,
      publisher,
      counters,
      pino({ level: "silent" }),
      clock,
      () => locale,
    );
    const send = (deviceId: string, id: string) =>
      commands.handle({ operator: "duty", deviceId, command: "self_test", id, by: "Wang Li" });
    return { commands, gas1, results, downlinks, counters, clock, send };
  }

  it(`takes ${COMMANDS_PER_DEVICE} a minute per device and refuses the next, counted, saying when to try again; elapsed time frees it, a wall-clock step does not`, () => {
    const t = setup();
    for (let i = 0; i < COMMANDS_PER_DEVICE; i++) {
      t.send("gas-1", `c${i}`);
      t.clock.advance(1000);
    }
    t.send("gas-1", "over");
    expect(t.downlinks.filter(([d]) => d === "gas-1")).toHaveLength(COMMANDS_PER_DEVICE);
    expect(t.results.at(-1)).toMatchObject({
      deviceId: "gas-1",
      command: "self_test",
      id: "over",
      ok: false,
      error: "too-many-commands",
      message: `device gas-1 has had ${COMMANDS_PER_DEVICE} commands in the last minute: not sent; the next is taken in ${WINDOW_MS / 1000 - COMMANDS_PER_DEVICE} s`,
    });
    expect(t.counters.rejected("operator", "cmd-too-many-commands")).toBe(1);
    // Another device has its own bound.
    t.send("gas-2", "other");
    expect(t.results.at(-1)).toMatchObject({ id: "other", ok: true });
    // Set forward an hour: no time passed, still refused.
    t.clock.stepWall(3_600_000);
    t.send("gas-1", "stepped");
    expect(t.results.at(-1)).toMatchObject({ id: "stepped", error: "too-many-commands" });
    // The oldest leaves the window: one more is taken.
    t.clock.advance(WINDOW_MS - COMMANDS_PER_DEVICE * 1000);
    t.send("gas-1", "later");
    expect(t.results.at(-1)).toMatchObject({ id: "later", ok: true, sent: true });
    t.send("gas-1", "again");
    expect(t.results.at(-1)).toMatchObject({ id: "again", error: "too-many-commands" });
    expect(t.counters.rejected("operator", "cmd-too-many-commands")).toBe(3);
  });

  it("says it in Chinese on a zh-CN site; the gateway's own commands are not limited", () => {
    const t = setup("zh-CN");
    for (let i = 0; i <= COMMANDS_PER_DEVICE; i++) t.send("gas-1", `c${i}`);
    expect(t.results.at(-1)).toMatchObject({
      error: "too-many-commands",
      message: `设备 gas-1 一分钟内已收到 ${COMMANDS_PER_DEVICE} 条命令，本命令未发送，请 60 秒后再试`,
    });
    for (let i = 0; i < 3; i++) expect(t.commands.automatic(t.gas1, "valve_close")).toBe(true);
    expect(t.downlinks).toHaveLength(COMMANDS_PER_DEVICE + 3);
  });
});
