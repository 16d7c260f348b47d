/**
 * The GD-2's alerts as its datasheet states them (../shared/datasheets/gd2-gas-detector.md), one
 * table, two profiles: the code profile (devices/gd2.ts) and the same detector written as data
 * (examples/profiles/gd2.yaml). Each case feeds both the same JSON messages, in order, through
 * their own parse and rules into the real alert engine on a fake clock; both must raise and clear
 * the same alerts at the same message, and those the case expects. The incident's part of
 * GAS_LEAK's detail (its peak `lel`, the gateway's automatic `valve_close`) and the commands the
 * gateway sends are compared too (DETAIL_CASES); the words of `causes` are not.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import { deviceSchema } from "../devices/config.js";
import { compileProfile } from "../devices/declared/compile.js";
import { gd2 } from "../devices/gd2.js";
import { type DeviceSettings, isRejection, type MqttDeviceProfile } from "../devices/profile.js";
import { siteSettings } from "../devices/test-fixtures.js";
import type { Alert, AlertSubject } from "../gateway/alerts/alert.js";
import { AlertEngine } from "../gateway/alerts/engine.js";
import { parseProfileText } from "../gateway/config/device-profiles.js";
import { DeviceRuleContext } from "../gateway/rule-context.js";
import { TimerWheel } from "../gateway/time/timer-wheel.js";

const FILE = "examples/profiles/gd2.yaml";

// biome-ignore lint/suspicious/noExplicitAny: both profiles, each with its own sample and state.
type AnyMqtt = MqttDeviceProfile<any, any>;

function yamlGd2(): AnyMqtt {
  const r = parseProfileText(readFileSync(FILE, "utf8"), FILE);
  if (!r.doc) throw new Error(r.problems.map((p) => `${p.line}: ${p.path}: ${p.message}`).join("\n"));
  return compileProfile(r.doc) as AnyMqtt;
}

/**
 * The rules' settings from a device entry as the site file gives it (`leakThreshold:` and
 * `autoShutOff: true`, or `settings:` with `autoShutOff: 1`).
 */
function settingsFor(profile: AnyMqtt, leakThreshold?: number, autoShutOff = false): DeviceSettings {
  const threshold = leakThreshold === undefined ? {} : { leakThreshold };
  const own =
    profile.model === "gd2"
      ? { ...threshold, ...(autoShutOff ? { autoShutOff: true } : {}) }
      : { settings: { ...threshold, ...(autoShutOff ? { autoShutOff: 1 } : {}) } };
  const entry = deviceSchema(profile).parse({ id: "gas-1", model: profile.model, password: "pw", ...own });
  return { ...siteSettings({ heartbeatIntervalMs: 60_000 }), ...profile.settings(entry) };
}

/**
 * A message as the detector sends it (seq and ts added), time passing, the gateway restarting, or
 * the detector going away (a command for it waits) or back (what waited was delivered).
 */
type Step = Record<string, unknown> | { wait: number } | { restart: true } | { away: boolean };

/** GAS_LEAK's detail fields of the incident (the peak, the automatic shut-off). */
const INCIDENT = ["peakLel", "peakLelSuspect", "autoShutOff", "autoShutOffQueued"] as const;

interface RunOptions {
  leakThreshold?: number;
  autoShutOff?: boolean;
  /** Also "<step> GAS_LEAK k=v ..." when the incident's detail changes, and "<step> sent <command>". */
  detail?: boolean;
}

/**
 * Runs the steps through one profile; returns "<step> <CODE> raised|cleared" for every alert
 * raised or cleared, the step being the index of the message or wait during which it happened.
 */
function run(profile: AnyMqtt, steps: readonly Step[], opts: RunOptions = {}): string[] {
  const clock = new FakeClock(1_763_798_400_000);
  const events: string[] = [];
  let step = -1;
  const engine = new AlertEngine(
    "s",
    clock,
    new TimerWheel(clock),
    {
      alertChanged: (a: Alert, t) => {
        // With the detail: a cleared alert not yet acknowledged that comes back too (returned).
        if (t === "raised" || t === "cleared" || (opts.detail && t !== "changed"))
          events.push(`${step} ${a.code} ${t}`);
      },
      escalated: () => {},
    },
    { escalationP1Ms: 3_600_000, escalationP2Ms: 3_600_000 },
  );
  const subject: AlertSubject = {
    id: "gas-1",
    model: profile.model as AlertSubject["model"],
    household: null,
  };
  const settings = settingsFor(profile, opts.leakThreshold, opts.autoShutOff);
  // The gateway's automatic commands: sent (recorded), waiting while the detector is away.
  let away = false;
  const rules = new DeviceRuleContext<AlertSubject>(
    (_d, name) => {
      events.push(`${step} sent ${name}`);
      return true;
    },
    () => away,
  );
  let shown = "";
  let state = profile.initialState();
  let seq = 0;
  for (const [i, m] of steps.entries()) {
    step = i;
    if ("wait" in m) {
      // One second at a time, as the gateway's timer wheel ticks.
      for (let t = 0; t < (m.wait as number); t += 1000) clock.advance(1000);
      continue;
    }
    if ("away" in m) {
      away = m.away as boolean;
      continue;
    }
    if ("restart" in m) {
      // The rule state as the journal keeps it, put back into a fresh one; open alerts are the
      // engine's, restored by the gateway with their own times (here: kept).
      const saved = profile.durable?.save(state) ?? [];
      state = profile.initialState();
      profile.durable?.restore(state, JSON.parse(JSON.stringify(saved)), clock.now());
      continue;
    }
    clock.advance(100);
    const s = profile.parse({ seq: ++seq, ts: clock.now(), ...m });
    if (isRejection(s)) throw new Error(`${profile.model} refused ${JSON.stringify(m)}: ${s.detail}`);
    profile.rules(
      s,
      state,
      settings,
      rules.for(subject, engine.contextFor(subject, false), false, clock.monotonic()),
    );
    const leak = engine.find("gas-1", "GAS_LEAK");
    if (!opts.detail || leak === undefined || !leak.conditionActive) continue;
    const d = INCIDENT.flatMap((k) => (leak.detail[k] === undefined ? [] : [`${k}=${leak.detail[k]}`]));
    if (d.join(" ") !== shown) events.push(`${i} GAS_LEAK ${(shown = d.join(" "))}`);
  }
  return events;
}

const hb = (lel: number, extra: Record<string, unknown> = {}) => ({
  t: "hb",
  lel,
  valve: "closed",
  mains: true,
  fault: 0,
  ...extra,
});
const alarm = (lel: number, level: string, valve = "closed") => ({ t: "alarm", lel, level, valve });

interface Case {
  name: string;
  steps: Step[];
  /** The events both profiles must give ("<step> <CODE> raised|cleared"). */
  expected: string[];
  leakThreshold?: number;
}

const CASES: Case[] = [
  {
    name: "the detector's level alone raises at 7 %LEL; back to none, the leak holds until lel is under 5",
    steps: [hb(0), alarm(7, "low"), alarm(7, "none"), hb(6), hb(5), hb(4.9)],
    expected: ["1 GAS_LEAK raised", "5 GAS_LEAK cleared"],
  },
  {
    name: "level none with lel at 5.0 exactly holds (under 5 clears, not at 5)",
    steps: [alarm(18.5, "low"), alarm(5, "none"), hb(5), hb(4.9)],
    expected: ["0 GAS_LEAK raised", "3 GAS_LEAK cleared"],
  },
  {
    name: "the level back to none with lel already under 5 clears at once",
    steps: [hb(0), alarm(8, "high"), alarm(3, "none")],
    expected: ["1 GAS_LEAK raised", "2 GAS_LEAK cleared"],
  },
  {
    name: "lel at the threshold in a heartbeat raises; it holds down to 5 and clears under it",
    steps: [hb(9.9), hb(10), hb(7), hb(5), hb(4.9), hb(6)],
    expected: ["1 GAS_LEAK raised", "4 GAS_LEAK cleared"],
  },
  {
    name: "lel under 5 with the detector's level still low holds; the level's none clears",
    steps: [alarm(12, "low"), hb(2), hb(0), alarm(0, "none")],
    expected: ["0 GAS_LEAK raised", "3 GAS_LEAK cleared"],
  },
  {
    name: "a valve message (no lel) says nothing of the gas: the held leak stays",
    steps: [alarm(7, "low"), alarm(7, "none"), { t: "valve", valve: "closed", cause: "local" }, hb(4)],
    expected: ["0 GAS_LEAK raised", "3 GAS_LEAK cleared"],
  },
  {
    name: "cooking at 3-6 %LEL raises nothing",
    steps: [hb(3), hb(6), hb(5.5), hb(3), hb(0)],
    expected: [],
  },
  {
    name: "a site threshold of 20: 15 %LEL alone raises nothing; the level raises, and 15 holds it",
    steps: [hb(15), alarm(15, "low"), alarm(15, "none"), hb(4)],
    expected: ["1 GAS_LEAK raised", "3 GAS_LEAK cleared"],
    leakThreshold: 20,
  },
  {
    name: "under a sensor fault lel is not believed: it neither clears nor raises the leak",
    steps: [alarm(8, "low"), alarm(8, "none"), hb(2, { fault: 2 }), hb(0, { fault: 2 }), hb(2)],
    expected: ["0 GAS_LEAK raised", "2 FAULT raised", "4 GAS_LEAK cleared", "4 FAULT cleared"],
  },
  {
    name: "a leak whose valve is not closed: GAS_VALVE_NOT_CLOSED 20 s in, held with the leak, cleared with it",
    steps: [
      hb(0, { valve: "open" }),
      alarm(12, "low", "open"),
      { wait: 19_000 },
      { wait: 2_000 },
      alarm(7, "none", "open"),
      hb(6, { valve: "open" }),
      hb(4, { valve: "open" }),
    ],
    expected: [
      "1 GAS_LEAK raised",
      "3 GAS_VALVE_NOT_CLOSED raised",
      "6 GAS_LEAK cleared",
      "6 GAS_VALVE_NOT_CLOSED cleared",
    ],
  },
  {
    name: "a restart while the leak is held by lel alone: it stays held, and clears under 5",
    steps: [
      alarm(7, "low"),
      alarm(7, "none"),
      { restart: true },
      { t: "valve", valve: "closed", cause: "local" },
      hb(6),
      hb(4),
    ],
    expected: ["0 GAS_LEAK raised", "5 GAS_LEAK cleared"],
  },
  {
    name: "valve fault, valve motor fault, valve not fitted: FAULT until fault 0 and the valve well",
    steps: [hb(0, { valve: "fault" }), hb(0, { fault: 3 }), hb(0, { fault: 4 }), hb(0)],
    expected: ["0 FAULT raised", "3 FAULT cleared"],
  },
  {
    name: "mains lost more than 10 minutes: POWER_FAIL, counted from the first report; back on mains clears",
    steps: [hb(0, { mains: false }), { wait: 590_000 }, hb(0, { mains: false }), { wait: 20_000 }, hb(0)],
    expected: ["3 POWER_FAIL raised", "4 POWER_FAIL cleared"],
  },
];

/** The incident's detail and the commands sent, with the alerts ("<step> sent valve_close"). */
const DETAIL_CASES: (Case & { autoShutOff?: boolean })[] = [
  {
    name: "peakLel is the incident's highest lel, kept as it falls; a new incident starts over",
    steps: [hb(0), alarm(12, "low"), hb(18.5), hb(9), alarm(7, "none"), hb(4), alarm(8, "high"), hb(6)],
    expected: [
      "1 GAS_LEAK raised",
      "1 GAS_LEAK peakLel=12 peakLelSuspect=false autoShutOff=false autoShutOffQueued=false",
      "2 GAS_LEAK peakLel=18.5 peakLelSuspect=false autoShutOff=false autoShutOffQueued=false",
      "5 GAS_LEAK cleared",
      // Not yet acknowledged: the same alert comes back, with the new incident's peak.
      "6 GAS_LEAK reactivated",
      "6 GAS_LEAK peakLel=8 peakLelSuspect=false autoShutOff=false autoShutOffQueued=false",
    ],
  },
  {
    name: "under a sensor fault: the detector's own alarm reading, doubtful; a heartbeat's is not taken",
    steps: [hb(0, { fault: 2 }), alarm(12, "low"), hb(30, { fault: 2 }), alarm(15, "high"), alarm(11, "low")],
    expected: [
      "0 FAULT raised",
      "1 GAS_LEAK raised",
      "1 GAS_LEAK peakLel=12 peakLelSuspect=true autoShutOff=false autoShutOffQueued=false",
      "3 GAS_LEAK peakLel=15 peakLelSuspect=true autoShutOff=false autoShutOffQueued=false",
    ],
  },
  {
    name: "the sensor back: a believed reading is the peak, no longer said to be doubtful",
    steps: [hb(0, { fault: 2 }), alarm(12, "low"), hb(6), hb(14)],
    expected: [
      "0 FAULT raised",
      "1 GAS_LEAK raised",
      "1 GAS_LEAK peakLel=12 peakLelSuspect=true autoShutOff=false autoShutOffQueued=false",
      "2 FAULT cleared",
      "2 GAS_LEAK peakLel=6 peakLelSuspect=false autoShutOff=false autoShutOffQueued=false",
      "3 GAS_LEAK peakLel=14 peakLelSuspect=false autoShutOff=false autoShutOffQueued=false",
    ],
  },
  {
    name: "a restart mid-incident keeps the peak",
    steps: [alarm(12, "low"), hb(20), { restart: true }, hb(15), hb(21)],
    expected: [
      "0 GAS_LEAK raised",
      "0 GAS_LEAK peakLel=12 peakLelSuspect=false autoShutOff=false autoShutOffQueued=false",
      "1 GAS_LEAK peakLel=20 peakLelSuspect=false autoShutOff=false autoShutOffQueued=false",
      "4 GAS_LEAK peakLel=21 peakLelSuspect=false autoShutOff=false autoShutOffQueued=false",
    ],
  },
  {
    name: "autoShutOff: valve_close once per incident, not while the valve is closed",
    autoShutOff: true,
    steps: [
      hb(0, { valve: "open" }),
      alarm(12, "low", "open"),
      alarm(14, "high", "open"),
      { t: "valve", valve: "closed", cause: "remote" },
      alarm(3, "none", "closed"),
      alarm(9, "low", "closed"),
      hb(4),
      alarm(8, "low", "moving"),
    ],
    expected: [
      "1 sent valve_close",
      "1 GAS_LEAK raised",
      "1 GAS_LEAK peakLel=12 peakLelSuspect=false autoShutOff=true autoShutOffQueued=false",
      "2 GAS_LEAK peakLel=14 peakLelSuspect=false autoShutOff=true autoShutOffQueued=false",
      "4 GAS_LEAK cleared",
      // The same alert back (not yet acknowledged), a new incident: the valve is closed, nothing
      // sent, and the alert does not say the last incident's valve_close.
      "5 GAS_LEAK reactivated",
      "5 GAS_LEAK peakLel=9 peakLelSuspect=false autoShutOff=false autoShutOffQueued=false",
      // The valve no longer closed: this incident's one valve_close.
      "7 sent valve_close",
      "7 GAS_LEAK peakLel=9 peakLelSuspect=false autoShutOff=true autoShutOffQueued=false",
    ],
  },
  {
    name: "autoShutOff for a detector that is away: queued until it is back, then sent",
    autoShutOff: true,
    steps: [
      hb(0, { valve: "open" }),
      { away: true },
      alarm(12, "low", "open"),
      { away: false },
      { t: "valve", valve: "closed", cause: "remote" },
    ],
    expected: [
      "2 sent valve_close",
      "2 GAS_LEAK raised",
      "2 GAS_LEAK peakLel=12 peakLelSuspect=false autoShutOff=true autoShutOffQueued=true",
      "4 GAS_LEAK peakLel=12 peakLelSuspect=false autoShutOff=true autoShutOffQueued=false",
    ],
  },
  {
    name: "a restart mid-incident sends valve_close no second time",
    autoShutOff: true,
    steps: [
      alarm(12, "low", "open"),
      { restart: true },
      hb(15, { valve: "open" }),
      hb(16, { valve: "moving" }),
    ],
    expected: [
      "0 sent valve_close",
      "0 GAS_LEAK raised",
      "0 GAS_LEAK peakLel=12 peakLelSuspect=false autoShutOff=true autoShutOffQueued=false",
      "2 GAS_LEAK peakLel=15 peakLelSuspect=false autoShutOff=true autoShutOffQueued=false",
      "3 GAS_LEAK peakLel=16 peakLelSuspect=false autoShutOff=true autoShutOffQueued=false",
    ],
  },
  {
    name: "autoShutOff off (the default): no command, nor a word of one",
    steps: [hb(0, { valve: "open" }), alarm(12, "low", "open")],
    expected: [
      "1 GAS_LEAK raised",
      "1 GAS_LEAK peakLel=12 peakLelSuspect=false autoShutOff=false autoShutOffQueued=false",
    ],
  },
];

describe("GD-2: the code profile and the YAML profile raise and clear the same alerts", () => {
  const profiles: [string, () => AnyMqtt][] = [
    ["code profile (devices/gd2.ts)", () => gd2 as AnyMqtt],
    [`YAML profile (${FILE})`, yamlGd2],
  ];
  it.each(CASES)("$name", (c) => {
    const [code, yaml] = profiles.map(([, p]) => run(p(), c.steps, { leakThreshold: c.leakThreshold }));
    expect(code, profiles[0]![0]).toEqual(c.expected);
    expect(yaml, profiles[1]![0]).toEqual(c.expected);
  });
  it("the same commands: the valves asked to confirm (actuates), the same downlinks, `actuates` not sent", () => {
    const commands = (p: AnyMqtt) =>
      Object.fromEntries(
        Object.entries(p.commands).map(([name, c]) => [
          name,
          { actuates: c.actuates === true, sent: c.message("r1") },
        ]),
      );
    const code = commands(gd2 as AnyMqtt);
    expect(code.valve_close?.actuates).toBe(true);
    expect(commands(yamlGd2())).toEqual(code);
  });
  it.each(DETAIL_CASES)("$name", (c) => {
    const [code, yaml] = profiles.map(([, p]) =>
      run(p(), c.steps, { autoShutOff: c.autoShutOff ?? false, detail: true }),
    );
    expect(code, profiles[0]![0]).toEqual(c.expected);
    expect(yaml, profiles[1]![0]).toEqual(c.expected);
  });
});
