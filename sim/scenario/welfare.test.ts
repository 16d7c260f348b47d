/**
 * The DS-10 welfare behaviours (datasheets/ds10-door.md, "Behaviour worth simulating"): a
 * resident's day (the door opens and closes at plausible times, seeded) and a resident who stays
 * in (nothing opens: WELFARE_CHECK once, on the household). Driven on a fake clock against a door
 * that records what it sends.
 */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import { seededRandom } from "../mqtt/random.js";
import { LONGEST_QUIET_HOURS, residentDays } from "../mqtt/resident-day.js";
import { type SiteModel, scaleSite } from "../site.js";
import type { Expectation } from "./matcher.js";
import { loadScenario, parseScenario, ScenarioError } from "./schema.js";
import { fleetOf, recordingMatcher, runnerOf, siteOf } from "./test-fixtures.js";

describe("a resident's day (seeded)", () => {
  it("shopping in the morning, a walk in the afternoon, rarely the night; the same seed, the same day", () => {
    const days = residentDays(seededRandom(7), 30);
    expect(residentDays(seededRandom(7), 30)).toEqual(days);
    expect(residentDays(seededRandom(8), 30)).not.toEqual(days);
    for (let d = 0; d < 30; d++) {
      const of = (why: string) => days.filter((p) => p.why === why && Math.floor(p.hour / 24) === d);
      const [shop, back, walk, home] = [
        "leaves for shopping",
        "back from shopping",
        "leaves for a walk",
        "back from a walk",
      ].map((w) => of(w)[0]?.hour as number) as [number, number, number, number];
      expect(shop % 24).toBeGreaterThanOrEqual(8);
      expect(shop % 24).toBeLessThan(10);
      expect(back).toBeGreaterThan(shop);
      expect(walk % 24).toBeGreaterThanOrEqual(14.5);
      expect(home).toBeGreaterThan(walk);
      expect(home % 24).toBeLessThanOrEqual(18);
    }
    const nights = days.filter((p) => p.why === "at night").length;
    expect(nights).toBeGreaterThanOrEqual(0);
    expect(nights).toBeLessThanOrEqual(9); // about one night in ten
    // Never shut longer than the schedule's longest quiet stretch (the night: 19 h).
    for (let i = 1; i < days.length; i++)
      expect((days[i]?.hour as number) - (days[i - 1]?.hour as number)).toBeLessThanOrEqual(
        LONGEST_QUIET_HOURS,
      );
    expect(LONGEST_QUIET_HOURS).toBe(19);
  });
});

/** A DS-10 that records its state messages on the fake clock. */
function recordingDoor(clock: FakeClock) {
  const sent: Array<{ at: number; contact: string }> = [];
  const door = {
    contact: "closed" as "open" | "closed",
    online: true,
    open() {
      door.contact = "open";
      sent.push({ at: clock.now(), contact: "open" });
      return Promise.resolve({ ok: true });
    },
    close() {
      door.contact = "closed";
      sent.push({ at: clock.now(), contact: "closed" });
      return Promise.resolve({ ok: true });
    },
  };
  return { door, sent };
}

const doorSpec = (id: string, household?: string) => ({
  id,
  model: "ds10",
  password: "x",
  household,
  heartbeatIntervalS: 3600,
  holdOpenTimeS: 60,
  encoding: "json",
  clockSkewMs: 0,
});

function setup(options: { welfarePeriodS: number; householdWelfare?: SiteModel["householdWelfare"] }) {
  const clock = new FakeClock();
  const a = recordingDoor(clock);
  const b = recordingDoor(clock);
  const c = recordingDoor(clock);
  const fleet = fleetOf({
    mqtt: new Map<string, unknown>([
      ["door-a", a.door],
      ["door-b", b.door],
      ["fire-door", c.door],
    ]),
    specs: new Map([
      ["door-a", doorSpec("door-a", "hh-a")],
      ["door-b", doorSpec("door-b", "hh-b")],
      ["fire-door", doorSpec("fire-door")],
    ]),
  });
  const site = siteOf({
    households: ["hh-a", "hh-b"],
    welfarePeriodS: options.welfarePeriodS,
    householdWelfare: options.householdWelfare,
  });
  const { matcher, expectations } = recordingMatcher();
  const runner = (phases: unknown[], seed = 1) =>
    runnerOf({ scenario: phases, site, fleet, matcher, seed, clock });
  return { clock, a, b, fleet, site, expectations, runner };
}

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
};
/** Advances the fake clock `ms` in steps of `stepMs`, letting the runner's promises run in between. */
async function step(clock: FakeClock, ms: number, stepMs = 100): Promise<void> {
  for (let t = 0; t < ms; t += stepMs) {
    clock.advance(Math.min(stepMs, ms - t));
    await flush();
  }
}

describe("resident-day and stays-in phases, on the fake clock", () => {
  it("resident-day: the door's passages on the day's timeline, compressed, each a real opening; nothing expected", async () => {
    const { clock, a, expectations, runner } = setup({ welfarePeriodS: 24 });
    const r = runner([{ do: "resident-day", targets: ["door-a"], days: 2, dayLength: "24s" }], 5);
    const t0 = clock.now();
    const done = r.run();
    await step(clock, 50_000);
    await done;
    expect(expectations).toEqual([]);
    const plan = residentDays(seededRandom(0), 2).length; // at least the 8 trips of two days
    expect(plan).toBeGreaterThanOrEqual(8);
    const opens = a.sent.filter((s) => s.contact === "open");
    const closes = a.sent.filter((s) => s.contact === "closed");
    expect(opens.length).toBeGreaterThanOrEqual(8);
    expect(closes).toHaveLength(opens.length);
    // Alternating open/closed, each opening at least 300 ms (no bounce), under half the hold time.
    expect(a.sent.map((s) => s.contact)).toEqual(a.sent.map((_, i) => (i % 2 === 0 ? "open" : "closed")));
    for (let i = 0; i < opens.length; i++) {
      const held = (closes[i]?.at as number) - (opens[i]?.at as number);
      expect(held).toBeGreaterThanOrEqual(300);
      expect(held).toBeLessThanOrEqual(30_000);
    }
    // A 24 s day: the first trip between 08:00 and 10:00 (8-10 s in), never 19 h (19 s) shut.
    expect((opens[0]?.at as number) - t0).toBeGreaterThanOrEqual(8_000);
    expect((opens[0]?.at as number) - t0).toBeLessThanOrEqual(10_100);
    for (let i = 1; i < opens.length; i++)
      expect((opens[i]?.at as number) - (closes[i - 1]?.at as number)).toBeLessThan(19_000);
    expect(a.door.contact).toBe("closed");
    // Reproducible: the same seed gives the same passages at the same offsets.
    const again = setup({ welfarePeriodS: 24 });
    const r2 = again.runner([{ do: "resident-day", targets: ["door-a"], days: 2, dayLength: "24s" }], 5);
    const t1 = again.clock.now();
    const done2 = r2.run();
    await step(again.clock, 50_000);
    await done2;
    expect(again.a.sent.map((s) => [s.contact, s.at - t1])).toEqual(
      a.sent.map((s) => [s.contact, s.at - t0]),
    );
  });

  it("stays-in: home (open, closed), then shut for the days; WELFARE_CHECK on the household one period after; out again at the end", async () => {
    const { clock, b, expectations, runner } = setup({ welfarePeriodS: 20 });
    const r = runner([{ do: "stays-in", targets: ["door-b"], dayLength: "20s" }]);
    const done = r.run();
    await step(clock, 45_000);
    await done;
    expect(expectations).toHaveLength(1);
    const at = expectations[0]?.at as number;
    expect(expectations[0]).toMatchObject({ code: "WELFARE_CHECK", key: "hh-b", dueAt: at + 300 + 20_000 });
    // Two passages: home at the start, out again after two days (40 s).
    expect(b.sent.map((s) => [s.contact, s.at - at])).toEqual([
      ["open", 0],
      ["closed", 300],
      ["open", 40_300],
      ["closed", 40_600],
    ]);
  });

  it.each([
    [
      { do: "resident-day", targets: ["door-a"], dayLength: "24s" },
      { welfarePeriodS: 19 },
      /a day of 24 s leaves door-a shut for up to 19 s .* as long as hh-a's welfare period \(19 s\).*under 24 s/,
    ],
    [
      { do: "stays-in", targets: ["fire-door"], dayLength: "20s" },
      { welfarePeriodS: 20 },
      /fire-door is the door of no household/,
    ],
    [
      { do: "stays-in", targets: ["door-a"], days: 1, dayLength: "20s" },
      { welfarePeriodS: 20 },
      /not longer than hh-a's welfare period \(20 s\)/,
    ],
    [
      { do: "stays-in", targets: ["door-a"], dayLength: "20s" },
      { welfarePeriodS: 20, householdWelfare: { "hh-a": { enabled: false } } },
      /hh-a has welfare checks off/,
    ],
    [
      { do: "stays-in", targets: ["door-a"], dayLength: "20s" },
      { welfarePeriodS: 20, householdWelfare: { "hh-a": { enabled: true, quietHours: "22:00-07:00" } } },
      /hh-a has quiet hours/,
    ],
    [
      { do: "stays-in", targets: ["door-a"], dayLength: "5s" },
      { welfarePeriodS: 2 },
      /dayLength of 5 s leaves no time/,
    ],
  ] as const)("refused before the run: %j", (phase, site, reason) => {
    const { runner } = setup(site as Parameters<typeof setup>[0]);
    expect(() => runner([phase])).toThrow(ScenarioError);
    expect(() => runner([phase])).toThrow(reason);
  });

  it("the scenario format: days and dayLength belong to these two kinds only", () => {
    expect(() =>
      parseScenario({ name: "t", description: "d", phases: [{ do: "press", days: 2 }] }, "t.yaml"),
    ).toThrow(/days: not a field of press/);
    const s = parseScenario(
      { name: "t", description: "d", phases: [{ do: "stays-in", days: 3, dayLength: "1m" }] },
      "t.yaml",
    );
    expect(s.phases[0]).toMatchObject({ do: "stays-in", days: 3, dayLength: 60_000 });
  });
});

/**
 * The shipped scenario (sim/scenarios/welfare-check.yaml) on the --scale site it is written for,
 * on the fake clock: what it asserts (its expectations), and that its resident days really leave
 * no door shut for a welfare period. The same file against a real gateway:
 * test/sim-welfare.e2e.test.ts.
 */
describe("the shipped welfare-check scenario", () => {
  const { scenario } = loadScenario("welfare-check");
  const periodMs = scenario.scale.welfarePeriod as number;

  function onScaleSite(households: number) {
    const clock = new FakeClock();
    const site = scaleSite({ households, host: "127.0.0.1", port: 1, welfarePeriodS: periodMs / 1000 });
    // The site's doors only (its pendants play no part), each recording what it sends.
    const doors = new Map(
      site.mqtt.filter((d) => d.model === "ds10").map((spec) => [spec.id, { spec, ...recordingDoor(clock) }]),
    );
    const fleet = fleetOf({
      mqtt: new Map([...doors].map(([id, d]) => [id, d.door])),
      specs: new Map([...doors].map(([id, d]) => [id, d.spec])),
    });
    const { matcher, expectations } = recordingMatcher();
    const runner = () => runnerOf({ scenario, site, fleet, matcher, seed: 4, clock });
    return { clock, site, doors, expectations, runner };
  }

  it("writes the --scale site with its compressed welfare period; one day lasts one period", () => {
    expect(periodMs).toBe(16_000);
    expect(scenario).toMatchObject({ minHouseholds: 4, maxHouseholds: 4 });
    expect(onScaleSite(4).site.welfarePeriodS).toBe(16);
    for (const p of scenario.phases) expect(p).toMatchObject({ dayLength: periodMs, days: 3 });
  });

  it("expects WELFARE_CHECK once on the household that stays in, nothing on the three others, whose doors are never shut a period long", async () => {
    const { clock, doors, expectations, runner } = onScaleSite(4);
    const t0 = clock.now();
    const done = runner().run();
    await step(clock, 60_000);
    await done;
    // The scenario's own checks: WELFARE_CHECK on hh-04, once, one period after the door closed;
    // the resident days expect nothing (an alert on their households is unexpected: a failure).
    expect(expectations.map((e) => [e.code, e.key])).toEqual(
      expect.arrayContaining([["WELFARE_CHECK", "hh-04"]]),
    );
    expect(expectations.filter((e) => e.code !== "none")).toEqual([
      expect.objectContaining({ code: "WELFARE_CHECK", key: "hh-04" }),
    ]);
    const check = expectations.find((e) => e.code === "WELFARE_CHECK") as Expectation;
    expect(check.dueAt - check.at).toBe(300 + periodMs);
    for (const id of ["door-01", "door-02", "door-03"]) {
      const sent = doors.get(id)?.sent ?? [];
      expect(sent.length, id).toBeGreaterThanOrEqual(12); // shopping and a walk, each of 3 days
      // Never shut a welfare period long: from the run's start, between passages, to the last day's end.
      const times = [t0, ...sent.map((s) => s.at), t0 + 3 * periodMs];
      for (let i = 1; i < times.length; i++)
        expect((times[i] as number) - (times[i - 1] as number), id).toBeLessThan(periodMs);
    }
    // The resident who stays in: home at the start, out again three days later.
    expect(doors.get("door-04")?.sent.map((s) => [s.contact, s.at - check.at])).toEqual([
      ["open", 0],
      ["closed", 300],
      ["open", 3 * periodMs + 300],
      ["closed", 3 * periodMs + 600],
    ]);
  });

  it("is refused on a bigger --scale site: the households it leaves alone would raise the check", () => {
    expect(() => onScaleSite(5).runner()).toThrow(
      /welfare-check drives every household of at most 4 \(--scale 4\)/,
    );
    expect(() => onScaleSite(3).runner()).toThrow(/needs at least 4 households/);
  });
});
