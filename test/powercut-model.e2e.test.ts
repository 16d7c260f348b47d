/**
 * No acknowledged alert is forgotten across power cuts and crashes (docs/durability.md "When a
 * write reaches the disk"): a seeded random walk drives an in-process gateway (its pipeline, alert
 * engine, state recorder and journal on a real directory, through PowerCutFs) with pendant
 * presses and cancels, door and tamper events, GD-2 gas and mains readings (on-delays),
 * acknowledgements, shelving, out of service, away mode, time passing (escalations, call windows,
 * shelving ends), clock steps and reloads that add or remove a pendant; at random
 * moments the power goes (a copy of the directory holding only what was synced, or torn inside
 * the unsynced tail) or the process is killed (everything written, what it had not synced only in
 * the page cache; a third of the kills with a power cut during the restart too), sometimes with
 * requests in flight whose sync never came. The gateway that lost nothing runs on as the model of what would
 * have been; the restarted one, after the devices and operators that got no acknowledgement
 * sent again (same seq, same request), must hold the same alerts: same id for every alert
 * acknowledged to anyone, same state, count, acknowledgement, shelving (its end within 1 s), out
 * of service, away mode, escalation level and next due time (within 1 s); no alert that is not
 * in the model (closed and acknowledged as closed, or raised twice for one press).
 *
 * What the docs allow to be lost is not flagged: a reading that changes no alert (a door opening,
 * mains lost) is a checkpoint, and so is the on-delay it starts (`hold/`): its PUBACK waits for no
 * sync, so the alerts an on-delay raises (DOOR_HELD_OPEN, POWER_FAIL, GAS_VALVE_NOT_CLOSED) are
 * left out for a device whose last reading no later sync covered, and their escalation times
 * when no acknowledgement covered their raise (one that fell due while the gateway was down is
 * raised at the first reading after the start); after the start each such device reports where
 * it stands (a restored hold waits for a reading), to both gateways. A
 * device's silence and a welfare period do not count the downtime alike (DEVICE_LOST and
 * WELFARE_CHECK are left out), and revs may skip. Pending off-delays are not stored either: an
 * alert whose clear was pending at the cut clears later after the start (left out). An alert
 * state published and not yet synced (a raise by a timer) may be lost, so a request re-sent for an
 * alert no acknowledgement covered may be refused `unknown-alert`: its key is left out.
 *
 * Under `interval` an acknowledgement means written, not synced: a power cut may lose what the
 * acknowledgements after the last completed sync touched (left out; PowerCutFs says which were
 * covered), never one older than the period and its lateness, and a crash loses none of them.
 *
 * A failing seed names itself: `SEED=<n> npx vitest run test/powercut-model.e2e.test.ts` replays
 * it (the random walk is the seed's; the thread pool's timing is not, so a cut in flight may fall
 * a record earlier or later). `CRASH_POWER=0` replays a walk as it was before a crash could be
 * followed by a power cut during the restart (the regression cases found before it run so).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import type { Alert } from "../gateway/alerts/alert.js";
import { validateConfig } from "../gateway/config/load.js";
import { Gateway } from "../gateway/gateway.js";
import { createLogger } from "../gateway/log.js";
import { seededRandom } from "../sim/mqtt/random.js";
import { connect, OPS, pendantMsg, SITE, sleep, type TestClient, testConfig } from "./support/harness.js";
import { PowerCutFs } from "./support/power-cut-fs.js";

const S = 1000;
const MIN = 60 * S;
/** Codes whose timing the docs let a restart change (supervision does not count the downtime). */
const NOT_COMPARED = new Set(["DEVICE_LOST", "WELFARE_CHECK", "STORAGE_DAMAGED_AT_START"]);
/** The alerts an on-delay raises, per device that reports the condition (its `hold/` is a checkpoint). */
const HELD: Record<string, readonly string[]> = {
  "d-1": ["DOOR_HELD_OPEN"],
  "k-1": ["POWER_FAIL", "GAS_VALVE_NOT_CLOSED"],
};
const PASSWORD: Record<string, string> = {
  "p-1": "pw-p1",
  "p-2": "pw-p2",
  "p-3": "pw-p3",
  "d-1": "pw-d1",
  "k-1": "pw-k1",
};

/** The simulator's seeded generator (mulberry32), so a seed replays its walk. */
function random(seed: number): { next(): number; int(n: number): number; pick<T>(xs: readonly T[]): T } {
  const next = seededRandom(seed);
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: (xs) => xs[int(xs.length)] as (typeof xs)[number] };
}

type Sync = "batch" | "always" | "interval";

/** `interval`'s sync period here: short, so a walk meets cuts both inside and past it. */
const SYNC_INTERVAL_MS = 200;
/** How much later than its period the interval's fdatasync may complete on a loaded machine. */
const SYNC_LATE_MS = 1000;
/** The devices of each household (away mode's subject). */
const HOUSEHOLD: Record<string, readonly string[]> = {
  "hh-1": ["p-1", "d-1", "p-3"],
  "hh-2": ["p-2", "k-1"],
};

const householdOf = (device: string) =>
  Object.keys(HOUSEHOLD).find((h) => HOUSEHOLD[h]?.includes(device)) as string;

/**
 * Under `interval`, an acknowledgement once its records are written: what the journal's files held
 * then, and what the acknowledged request touched (what a power cut before the next sync may lose).
 */
interface Written {
  at: number;
  files: Map<string, number>;
  open: string[];
  devices: string[];
  keys: string[];
  households: string[];
  step: boolean;
}

/** What a power cut under `interval` may have lost: left out of the comparison. */
interface Lost {
  devices: Set<string>;
  keys: Set<string>;
  households: Set<string>;
}

interface Running {
  gw: Gateway;
  clock: FakeClock;
  fs: PowerCutFs;
  dir: string;
  clients: Map<string, TestClient>;
}

/** What a device or operator sends; sent again as it was when its acknowledgement never came. */
type Send =
  | { kind: "device"; device: string; topic: string; payload: string }
  | { kind: "ops"; topic: string; payload: string; ref: string };

/** One alert as compared: what an operator relies on. */
function view(a: Alert) {
  return {
    key: `${a.code}/${a.subject.id}`,
    state: a.state,
    count: a.count,
    ackedBy: a.ackedBy,
    shelvedUntil: a.shelvedUntil,
    outOfService: a.outOfServiceBy !== null,
    escalationLevel: a.escalationLevel,
    escalationNextAt: a.escalationNextAt,
  };
}

const near = (a: number | null, b: number | null) =>
  a === null || b === null ? a === b : Math.abs(a - b) <= S;

const config = (sync: Sync, withP3: boolean) =>
  validateConfig(
    testConfig({
      alerts: { escalation: { p1: "2m", p2: "5m" } },
      // Small segments and snapshots, so cuts also fall around rolls and compactions.
      storage: {
        sync,
        ...(sync === "interval" ? { syncInterval: `${SYNC_INTERVAL_MS}ms` } : {}),
        segmentSize: "8KiB",
        compactAfter: "24KiB",
      },
      devices: [
        { id: "p-1", model: "ec200", password: "pw-p1", household: "hh-1" },
        { id: "d-1", model: "ds10", password: "pw-d1", household: "hh-1", holdOpenTime: "60s" },
        { id: "p-2", model: "ec200", password: "pw-p2", household: "hh-2" },
        { id: "k-1", model: "gd2", password: "pw-k1", household: "hh-2" },
        ...(withP3 ? [{ id: "p-3", model: "ec200" as const, password: "pw-p3", household: "hh-1" }] : []),
      ],
    }),
    "test",
  );

/** How long one wait of the walk (a start, an acknowledgement, a write, a reload, a stop) may take. */
const WAIT_MS = 15_000;

/** What vitest gives a test: its timeout's signal, and a hook run even when the test timed out. */
interface TestHooks {
  signal: AbortSignal;
  onTestFinished: (fn: () => Promise<void>, timeout?: number) => void;
}

/**
 * Runs one seed's walk of `steps`; throws (naming the seed and its last steps) where the restarted
 * gateway differs, or where a wait does not finish within WAIT_MS (a hang is a failure that says
 * what it waited for, never vitest's timeout). Its gateways are stopped and its directories removed
 * whatever happens, at vitest's timeout too (`hooks`).
 */
async function runSeed(
  seed: number,
  sync: Sync,
  steps: number,
  hooks?: TestHooks,
  {
    sectors = process.env.TEAR === "pages",
    powerAfterCrash = process.env.CRASH_POWER !== "0",
  }: {
    /** Torn cuts keep the unsynced tail's sectors in any order (else a prefix of it). */
    sectors?: boolean;
    /** A third of the crashes followed by a power cut during the restart (the walks before it: false). */
    powerAfterCrash?: boolean;
  } = {},
): Promise<void> {
  const r = random(seed);
  // Its own stream, so that the walks every seed had before the power cut after a crash's restart
  // (below) stay as they were: the seeds kept as regression cases replay what they found.
  const afterCrash = random(seed + 0x5eed);
  const log: string[] = [];
  const dirs: string[] = [];
  const running: Running[] = [];
  /** Starts not finished (a start that timed out may still finish: its gateway is stopped too). */
  const starting = new Set<Promise<Gateway>>();
  const replay = `replay: SEED=${seed} SYNC=${sync} STEPS=${steps}${sectors ? " TEAR=pages" : ""} npx vitest run test/powercut-model.e2e.test.ts`;
  let at = "the first start";
  /** Rejects when `p` takes more than WAIT_MS, or at vitest's timeout: names the wait, the step and the last steps. */
  const within = <T>(p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const fail = (why: string) =>
        reject(
          new Error(
            `seed ${seed} (${sync}) ${at}: ${what} ${why}; ${replay}\nlast steps:\n${log.slice(-30).join("\n")}`,
          ),
        );
      const timer = setTimeout(() => fail(`did not finish within ${ms / S} s`), ms);
      const aborted = () => fail("was still pending at the test's timeout");
      if (hooks?.signal.aborted) aborted();
      hooks?.signal.addEventListener("abort", aborted, { once: true });
      const off = () => {
        clearTimeout(timer);
        hooks?.signal.removeEventListener("abort", aborted);
      };
      p.then(
        (v) => {
          off();
          resolve(v);
        },
        (err: unknown) => {
          off();
          reject(err);
        },
      );
    });
  const afterWrite = (run: Running) =>
    new Promise<void>((done) => (run.gw.store ? run.gw.store.afterWrite(done) : done()));
  /**
   * Stops every gateway still running (their syncs released first: a held sync is a disk that
   * never answers, and stop() waits for the last sync) and removes every directory; what did not
   * stop is returned. Once, from the walk's end or from vitest's hook, whichever comes first.
   */
  let cleaned: Promise<string[]> | null = null;
  const cleanup = (): Promise<string[]> =>
    (cleaned ??= (async () => {
      const left: string[] = [];
      const bounded = async (p: Promise<unknown>, what: string) => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<"late">((done) => {
          timer = setTimeout(() => done("late"), WAIT_MS);
        });
        try {
          if ((await Promise.race([p, late])) === "late")
            left.push(`${what}: not finished within ${WAIT_MS / S} s`);
        } catch (err) {
          left.push(`${what}: ${(err as Error).message}`);
        } finally {
          clearTimeout(timer);
        }
      };
      try {
        for (const p of starting)
          await bounded(
            p.then((gw) => (running.some((run) => run.gw === gw) ? undefined : gw.stop())),
            "a start",
          );
        for (const run of running.splice(0)) {
          run.fs.releaseSyncs();
          await bounded(Promise.all([...run.clients.values()].map((c) => c.end())), "its clients' end");
          await bounded(run.gw.stop(), "a gateway's stop");
        }
      } finally {
        for (const d of dirs) rmSync(d, { recursive: true, force: true });
      }
      return left;
    })());
  hooks?.onTestFinished(
    async () => {
      await cleanup();
    },
    2 * WAIT_MS + 5_000,
  );
  let withP3 = false;
  const seq: Record<string, number> = { "p-1": 0, "p-2": 0, "p-3": 0, "d-1": 0, "k-1": 0 };
  const door = { contact: "closed" as "open" | "closed", tamper: false };
  const gas = { lel: 0, valve: "open" as "open" | "closed", mains: true };
  /** Ids of alerts open when some acknowledgement (a PUBACK after a sync, a result) was sent. */
  const told = new Set<string>();
  /** Devices whose last reading may still be only in the kernel: no sync has covered it yet. */
  const unsynced = new Set<string>();
  /**
   * A clock step was adopted and no sync has covered its records (the `running` record and the
   * moved times: written, no acknowledgement waits for them): a power cut brings back the times
   * before the step, and the start takes the step for a clock set back across the restart (moved
   * by what the clock reads earlier than the last `running` record: the time since that record
   * and the time down are not known) or for time down (set forward: nothing moved). The times
   * (escalation, shelving end, away end) are not compared then; the rest is.
   */
  let stepUnsynced = false;
  let refs = 0;
  /** `interval`: acknowledgements (and clock steps) since the last cut, in order. */
  const written: Written[] = [];

  /**
   * `synced`: after a crash, what the killed gateway's disk held (its unsynced writes are in the
   * page cache); `cut`: called with the new gateway's file system as the start hands its first sync
   * to the pool, or once it has started if it hands none.
   */
  const start = async (
    clock: FakeClock,
    dir: string,
    synced?: ReadonlyMap<string, Buffer>,
    cut?: (fs: PowerCutFs) => void,
  ): Promise<Running> => {
    const fs = new PowerCutFs(dir, undefined, synced);
    if (cut) fs.cutAtNextSync(() => cut(fs));
    const starts = Gateway.start({
      config: config(sync, withP3),
      clock,
      boottime: () => clock.boottime(),
      logger: createLogger({ level: "silent" }),
      dataDir: dir,
      journalFs: fs,
    });
    starting.add(starts);
    const gw = await within(starts, "the gateway's start");
    starting.delete(starts);
    fs.cutNow();
    const run: Running = { gw, clock, fs, dir, clients: new Map() };
    running.push(run);
    return run;
  };
  const client = async (run: Running, user: string): Promise<TestClient> => {
    let c = run.clients.get(user);
    if (!c || c.closedByServer) {
      c = await within(
        connect(run.gw, user, user === OPS.name ? OPS.password : (PASSWORD[user] as string)),
        `${user}'s connection`,
      );
      if (user === OPS.name)
        await within(c.subscribe(`linli/${SITE}/ops/result/${OPS.name}`), "a subscription");
      run.clients.set(user, c);
    }
    return c;
  };
  const stop = async (run: Running) => {
    await within(Promise.all([...run.clients.values()].map((c) => c.end())), "the clients' end");
    await within(run.gw.stop(), "the gateway's stop");
    running.splice(running.indexOf(run), 1);
  };
  /** Sends and waits for its acknowledgement (a PUBACK; for an operator, the result too, returned). */
  const send = async (run: Running, s: Send): Promise<Record<string, unknown> | null> => {
    if (s.kind === "device") {
      await within((await client(run, s.device)).publish(s.topic, s.payload), `the PUBACK of ${s.topic}`);
      return null;
    }
    const ops = await client(run, OPS.name);
    await within(ops.publish(s.topic, s.payload), `the PUBACK of ${s.topic}`);
    const result = await ops.waitFor(
      (m) => m.topic.endsWith(`ops/result/${OPS.name}`) && m.json().ref === s.ref,
      5000,
    );
    return result.json();
  };
  /**
   * `interval`: what the acknowledged request touched, looked up before it is sent (an ack can close
   * the alert it names).
   */
  const touches = (run: Running, s: Send): Pick<Written, "devices" | "keys" | "households"> => {
    // A device's message is its household's activity too: it may end away mode.
    if (s.kind === "device") return { devices: [s.device], keys: [], households: [householdOf(s.device)] };
    const [action, target] = s.topic.split("/").slice(-2) as [string, string];
    if (action === "service") return { devices: [target], keys: [], households: [] };
    if (action === "away") return { devices: [...(HOUSEHOLD[target] ?? [])], keys: [], households: [target] };
    const a = run.gw.engine.openAlerts().find((x) => x.id === target);
    return { devices: [], keys: a ? [view(a).key] : [], households: [] };
  };
  /** `interval`: what the files hold once everything put so far is written (the acknowledgement's promise). */
  const markWritten = async (
    run: Running,
    touched: Pick<Written, "devices" | "keys" | "households">,
    step = false,
  ) => {
    await within(afterWrite(run), "the journal's write");
    written.push({
      at: performance.now(),
      files: run.fs.written(run.dir),
      open: step ? [] : run.gw.engine.openAlerts().map((a) => a.id),
      ...touched,
      step,
    });
  };
  /**
   * What an acknowledgement says was synced (batch, always: everything written before it). An
   * operator's answer waits for the sync of the records its action put (commit()); an action that
   * put none (a device put back in service that was in service) is answered at once, and covers no
   * checkpoint before it (a door's hold-open start: docs/durability.md "Checkpoints").
   */
  const acknowledged = (run: Running, s: Send, putRecords: boolean) => {
    const synced = s.kind === "ops" ? putRecords : s.payload.includes('"press"');
    if (synced) {
      unsynced.clear();
      stepUnsynced = false;
      for (const a of run.gw.engine.openAlerts()) told.add(a.id);
    } else if (s.kind === "device" && HELD[s.device]) unsynced.add(s.device);
  };
  /** Moves gateway time; what it caused is written by the next step's turn of the event loop. */
  const settle = async (run: Running, ms: number, wait = 5) => {
    run.clock.advance(ms);
    await sleep(wait);
  };
  const sorted = (run: Running) =>
    run.gw.engine
      .openAlerts()
      .filter((a) => a.subject.model !== "gateway")
      .sort((a, b) => view(a).key.localeCompare(view(b).key));
  const doorState = (): Send => ({
    kind: "device",
    device: "d-1",
    topic: "devices/ds10/d-1/up",
    payload: JSON.stringify({ t: "state", seq: ++seq["d-1"]!, ts: 0, ...door, bat: 64 }),
  });
  const gasState = (): Send => ({
    kind: "device",
    device: "k-1",
    topic: "devices/gd2/k-1/up",
    payload: JSON.stringify({ t: "hb", seq: ++seq["k-1"]!, ts: 0, ...gas, fault: 0 }),
  });

  /** The next thing a device or an operator does, drawn from the seed (null: nothing fits). */
  const draw = (run: Running): Send | null => {
    const roll = r.int(100);
    const ops = (topic: string, body: Record<string, unknown>): Send => {
      const ref = `r${++refs}`;
      return { kind: "ops", topic: `linli/${SITE}/${topic}`, payload: JSON.stringify({ ...body, ref }), ref };
    };
    if (roll < 22) {
      const p = r.pick(withP3 ? ["p-1", "p-2", "p-3"] : ["p-1", "p-2"]);
      const evt = r.int(6) === 0 ? "cancel" : "press";
      return {
        kind: "device",
        device: p,
        topic: `devices/ec200/${p}/up`,
        payload: pendantMsg(++seq[p]!, evt),
      };
    }
    if (roll < 32) {
      if (r.int(3) === 0) door.tamper = !door.tamper;
      else door.contact = door.contact === "open" ? "closed" : "open";
      return doorState();
    }
    if (roll < 42) {
      const what = r.int(3);
      if (what === 0) gas.mains = !gas.mains;
      else if (what === 1) gas.lel = gas.lel > 0 ? r.int(4) : 10 + r.int(30);
      else gas.valve = gas.valve === "open" ? "closed" : "open";
      return gasState();
    }
    const open = sorted(run);
    if (roll < 58 && open.length > 0) return ops(`ack/${r.pick(open).id}`, { note: "seen" });
    if (roll < 67) {
      const shelvable = open.filter((a) => a.priority !== 1);
      if (shelvable.length > 0)
        return ops(`shelve/${r.pick(shelvable).id}`, { duration: `${1 + r.int(20)}m`, reason: "test" });
    }
    if (roll < 73 && open.length > 0) return ops(`unshelve/${r.pick(open).id}`, {});
    if (roll < 85)
      return ops(`service/${r.pick(["p-1", "p-2", "d-1", "k-1"])}`, {
        inService: r.int(2) === 0,
        reason: "fitter",
      });
    const away = r.int(3) !== 0;
    const until = run.clock.now() + (10 + r.int(120)) * MIN;
    return ops(`away/${r.pick(["hh-1", "hh-2"])}`, away ? { away, until } : { away });
  };

  /** The restarted gateway against the one that lost nothing: what an operator relies on. */
  const compare = (ref: Running, back: Running, what: string, times: boolean, lost: Lost) => {
    const keep = (a: Alert) =>
      !NOT_COMPARED.has(a.code) &&
      !(unsynced.has(a.subject.id) && HELD[a.subject.id]?.includes(a.code)) &&
      !lost.devices.has(a.subject.id) &&
      !lost.households.has(a.subject.id) &&
      !lost.keys.has(view(a).key);
    const want = new Map(
      sorted(ref)
        .filter(keep)
        .map((a) => [view(a).key, a]),
    );
    const got = new Map(
      sorted(back)
        .filter(keep)
        .map((a) => [view(a).key, a]),
    );
    const problems: string[] = [];
    // A clock step the cut took away: the start moves times back by the gap to the last `running`
    // record on the disk, not by the step (docs/durability.md "A clock set back across a restart";
    // under held syncs that record is the model's minutes of gateway time older), so a call's
    // window may end earlier or later than the model's: whether it has ended is left out (an
    // acknowledged call closes at its end, an unacknowledged one clears).
    const windowTimed = (a: Alert) => !times && a.windowUntil > 0;
    for (const [key, w] of want) {
      const g = got.get(key);
      if (!g) {
        if (!(windowTimed(w) && w.ackedBy !== null)) problems.push(`${key} (${w.id}, ${w.state}) forgotten`);
        continue;
      }
      if (told.has(w.id) && g.id !== w.id) problems.push(`${key}: id ${g.id}, was ${w.id}`);
      const vw = view(w);
      const vg = view(g);
      for (const f of ["state", "count", "ackedBy", "outOfService"] as const)
        if (vw[f] !== vg[f] && !(f === "state" && (windowTimed(w) || windowTimed(g))))
          problems.push(`${key} ${f}: ${vg[f]}, would be ${vw[f]}`);
      // An on-delay that fell due while the gateway was down (or whose raise no sync covered)
      // raises at the first reading after the start ("A pending on-delay across a restart"):
      // its escalation counts from then.
      const late = HELD[w.subject.id]?.includes(w.code) === true && !told.has(w.id);
      if (times && !late) {
        if (vw.escalationLevel !== vg.escalationLevel)
          problems.push(`${key} escalationLevel: ${vg.escalationLevel}, would be ${vw.escalationLevel}`);
        for (const f of ["shelvedUntil", "escalationNextAt"] as const)
          if (!near(vw[f], vg[f])) problems.push(`${key} ${f}: ${vg[f]}, would be ${vw[f]}`);
      }
    }
    for (const [key, g] of got)
      if (!want.has(key) && !(windowTimed(g) && g.ackedBy !== null))
        problems.push(`${key} (${g.id}, ${g.state}) open, not in the model (closed or never raised)`);
    const away = (run: Running) =>
      JSON.stringify(
        run.gw.supervisor
          .awayStatuses()
          .filter((a) => !lost.households.has(a.household))
          .map((a) => `${a.household}:${a.until === null || !times ? "-" : Math.round(a.until / S)}`)
          .sort(),
      );
    if (away(ref) !== away(back)) problems.push(`away ${away(back)}, would be ${away(ref)}`);
    if (problems.length > 0)
      throw new Error(
        `seed ${seed} (${sync}) ${what}; ${replay}\n` +
          `${problems.join("\n")}\nlast steps:\n${log.slice(-30).join("\n")}`,
      );
  };

  try {
    const first = mkdtempSync(path.join(tmpdir(), "linli-powercut-"));
    dirs.push(first);
    let live = await start(new FakeClock(), first);
    for (let step = 0; step < steps; step++) {
      at = `step ${step}`;
      if (hooks?.signal.aborted)
        throw new Error(`seed ${seed} (${sync}) ${at}: the test's timeout; ${replay}`);
      const roll = r.int(100);
      if (roll < 58) {
        const s = draw(live);
        if (!s) continue;
        log.push(`${step}: ${s.topic} ${s.payload}`);
        const touched = touches(live, s);
        const mark = live.gw.store?.commitMark ?? 0;
        await send(live, s);
        if (sync === "interval") await markWritten(live, touched);
        else acknowledged(live, s, (live.gw.store?.commitMark ?? 0) > mark);
      } else if (roll < 76) {
        const ms = r.pick([S, 10 * S, 25 * S, 50 * S, 2 * MIN + S, 5 * MIN, 11 * MIN, 13 * MIN]);
        log.push(`${step}: +${ms / S} s`);
        await settle(live, ms);
      } else if (roll < 79) {
        const ms = r.pick([-3_600_000, 3_600_000, -86_400_000]);
        log.push(`${step}: clock stepped ${ms / S} s`);
        live.clock.stepWall(ms);
        stepUnsynced = true;
        await settle(live, MIN + S); // adopted at the wheel's next tick
        // The step's moved times are checkpoints written at its adoption: covered once a sync
        // covers what the files held then, like an acknowledgement's records (and, as one, owed a
        // sync within the period: with no files here a cut 1.3 s after a step with nothing
        // acknowledged since was taken for a sync that never came).
        if (sync === "interval") await markWritten(live, { devices: [], keys: [], households: [] }, true);
      } else if (roll < 83) {
        withP3 = !withP3;
        log.push(`${step}: reload, p-3 ${withP3 ? "added" : "removed"}`);
        const result = await within(live.gw.reload(config(sync, withP3)), "the reload");
        expect(result.result, `seed ${seed}: reload`).toBe("applied");
        if (!withP3) live.clients.delete("p-3");
      } else {
        // The cut: maybe with requests in flight whose sync never completes, maybe after time passed
        // whose changes (escalations, call windows ending) were written and not synced.
        const how = r.pick(["power", "power", "torn", "crash"] as const);
        const inFlight: Send[] = [];
        /** What each operator request in flight touched, looked up when it was sent (its alert's key). */
        const inFlightKeys = new Map<Send, string[]>();
        let heldAt: number | null = null;
        // Under `interval`, sometimes the cut comes well after the period (and its lateness): then
        // nothing acknowledged may be lost.
        if (sync === "interval" && r.int(3) === 0) await sleep(SYNC_INTERVAL_MS + SYNC_LATE_MS + 100);
        if (r.int(2) === 0) {
          live.fs.holdSyncs();
          heldAt = performance.now();
          if (r.int(2) === 0) {
            const ms = r.pick([S, 25 * S, 2 * MIN + S, 5 * MIN]);
            log.push(`${step}: (syncs held) +${ms / S} s`);
            await settle(live, ms, 30);
          }
          for (let n = r.int(3); n > 0; n--) {
            const s = draw(live);
            if (!s) continue;
            inFlight.push(s);
            if (s.kind === "ops") inFlightKeys.set(s, touches(live, s).keys);
            log.push(`${step}: (in flight) ${s.topic} ${s.payload}`);
            const who = s.kind === "device" ? s.device : OPS.name;
            void client(live, who)
              .then((c) => c.publish(s.topic, s.payload))
              .catch(() => {});
            await sleep(20);
          }
          await sleep(30);
        }
        const copy = mkdtempSync(path.join(tmpdir(), "linli-powercut-"));
        dirs.push(copy);
        let torn: string | null = null;
        // Under `interval` a crash keeps every acknowledged request (written); published alert
        // states are written first too; the records of the last milliseconds nobody heard of may go.
        if (how === "crash" && sync === "interval") await within(afterWrite(live), "the journal's write");
        const cutAt = performance.now();
        // A door closed with no gateway time passed since: DOOR_HELD_OPEN's off-delay (the DS-10's
        // contact debounce) is pending, and pending off-delays are not stored (docs/durability.md
        // "What is stored": a restart only makes the clear later). The restarted gateway clears it
        // at the door's report after the start, so what the wait meets differs from the model: a
        // shelving that ran out while the box was down re-annunciates it (ISA-18.2), and it comes
        // back cleared-unacknowledged where the model closed it. Left out.
        const clearLater = sorted(live)
          .filter((a) => a.code === "DOOR_HELD_OPEN" && a.conditionActive && door.contact === "closed")
          .map((a) => view(a).key);
        let synced: Map<string, Buffer> | undefined;
        if (how === "crash") {
          PowerCutFs.crashCopy(live.dir, copy);
          synced = live.fs.syncedFiles(path.resolve(live.dir));
        } else torn = live.fs.cutCopy(live.dir, copy, how === "torn" ? r.next() : null, sectors).torn;
        // `interval`: a power cut may lose what was acknowledged after the last sync (docs/durability.md
        // "When a write reaches the disk"): no more than the period's worth (the syncs held: a disk
        // slower than the cut), and never anything acknowledged before a sync.
        const lost: Lost = { devices: new Set(), keys: new Set(clearLater), households: new Set() };
        // Requests in flight from different clients are concurrent: the gateway that lost nothing
        // may have applied a device's press before an operator's ack of its alert sent 20 ms
        // earlier (the operator's connection is another socket), and the restarted one gets them
        // again in the order listed. A press after an ack makes the alert unacknowledged again, an
        // ack after it acknowledged: both right. Such an alert's state is left out.
        const pressed = new Set(inFlight.flatMap((s) => (s.kind === "device" ? [s.device] : [])));
        for (const keys of inFlightKeys.values())
          for (const k of keys) if (pressed.has(k.split("/")[1] as string)) lost.keys.add(k);
        if (sync === "interval") {
          let lastDurable = -1;
          written.forEach((w, i) => {
            if (how === "crash" || live.fs.covers(w.files)) lastDurable = i;
          });
          const tooOld: string[] = [];
          written.forEach((w, i) => {
            if (i <= lastDurable) {
              for (const id of w.open) told.add(id);
              return;
            }
            const age = (heldAt ?? cutAt) - w.at;
            if (age > SYNC_INTERVAL_MS + SYNC_LATE_MS)
              tooOld.push(
                `${w.step ? "a clock step adopted" : "acknowledged"} ${Math.round(age)} ms before the cut and not synced: ${JSON.stringify(w.devices.concat(w.keys, w.households))}`,
              );
            for (const d of w.devices) lost.devices.add(d);
            for (const k of w.keys) lost.keys.add(k);
            for (const h of w.households) lost.households.add(h);
          });
          stepUnsynced = written.slice(lastDurable + 1).some((w) => w.step);
          written.length = 0;
          if (tooOld.length > 0)
            throw new Error(
              `seed ${seed} (${sync}) step ${step}: a sync never came; ${replay}\n${tooOld.join("\n")}\nlast steps:\n${log.slice(-30).join("\n")}`,
            );
          log.push(
            `${step}: lost may be ${JSON.stringify({ devices: [...lost.devices], keys: [...lost.keys], households: [...lost.households] })}`,
          );
        }
        // The gateway that lost nothing runs on: what would have been.
        live.fs.releaseSyncs();
        await sleep(60);
        // Requests in flight are sent again at once; otherwise the box may stay down a while.
        const down = inFlight.length > 0 ? 0 : r.pick([0, 5 * S, 3 * MIN, 20 * MIN]);
        log.push(
          `${step}: ${how} cut${torn ? ` torn ${torn}` : ""}, ${inFlight.length} in flight, down ${down / S} s`,
        );
        await settle(live, down, 30);
        // A crash, and the power gone too right after the restart, before any sync the start
        // handed to the pool completed (the brown-out that hung the box): what the killed gateway
        // wrote and never synced was only in the page cache, and what the start wrote after it may
        // reach the disk before it. The next start is from what the disk held, torn or not.
        let again: string | null = null;
        const cutAgain = (fs: PowerCutFs) => {
          again = mkdtempSync(path.join(tmpdir(), "linli-powercut-"));
          dirs.push(again);
          const tear = afterCrash.int(2) === 0 ? afterCrash.next() : null;
          const tornAgain = fs.cutCopy(copy, again, tear, sectors).torn;
          log.push(`${step}: and a power cut during the restart${tornAgain ? ` torn ${tornAgain}` : ""}`);
        };
        const powerAgain = powerAfterCrash && how === "crash" && afterCrash.int(3) === 0;
        let back = await start(
          new FakeClock(live.clock.now()),
          copy,
          synced,
          powerAgain ? cutAgain : undefined,
        );
        if (again !== null) {
          await stop(back);
          back = await start(new FakeClock(live.clock.now()), again);
        }
        // Whoever got no acknowledgement sends again, as it was. Under `interval` its acknowledgement
        // means written, not synced, like any other: the next cut may lose it within the period
        // (docs/durability.md "When a write reaches the disk": up to `syncInterval` of acknowledged
        // presses and operator actions), and fails when it was not synced within the period.
        for (const s of inFlight) {
          const touched = touches(back, s);
          const result = await send(back, s);
          if (sync === "interval") await markWritten(back, touched);
          if (s.kind === "device" && HELD[s.device]) unsynced.add(s.device);
          // An operator request for an alert whose raise no acknowledgement covered (not in `told`:
          // raised by a timer, an on-delay's end, while no sync completed) may find it forgotten:
          // published alert states not yet synced may be lost (docs/durability.md "When a write
          // reaches the disk"), and an on-delay's alert comes back raised anew at the first reading,
          // with a new id. The re-sent request is then refused (`unknown-alert`) and does not apply
          // to the new alert: its key is left out. An alert in `told` must still be there.
          const target = s.topic.split("/").at(-1) as string;
          if (result?.reason === "unknown-alert" && !told.has(target))
            for (const k of inFlightKeys.get(s) ?? []) lost.keys.add(k);
        }
        // Away mode's start is a time a clock step moves (the exit grace counts from it): with the
        // step's records lost, whether the readings below fall within the grace differs as the
        // start does, and so whether they end away mode. Left out where the starts differ.
        // A pending on-delay's start is one of those times: with the step's records lost, the start
        // moves it back by the gap to the last `running` record on the disk, so it runs on from
        // where it stood then and the time down does not count ("A clock set back across a
        // restart"), where the model's on-delay ran through it. Whether an on-delay's alert is
        // raised by the comparison is left out (found by TEAR=pages seed 7: a cut just past the
        // synced part, 180 s down: DOOR_HELD_OPEN and GAS_VALVE_NOT_CLOSED raised in the model only).
        if (stepUnsynced) {
          for (const [device, codes] of Object.entries(HELD))
            for (const code of codes) lost.keys.add(`${code}/${device}`);
          const since = (run: Running, h: string) =>
            run.gw.supervisor.awayStatuses().find((a) => a.household === h)?.since;
          for (const h of Object.keys(HOUSEHOLD))
            if (since(live, h) !== since(back, h)) lost.households.add(h);
        }
        // Devices with on-delays say where they stand (a restored hold waits for a reading), to both.
        // Under `interval` their acknowledgements by the restarted gateway are written, not synced (above).
        for (const s of [doorState(), gasState()])
          for (const run of [live, back]) {
            const touched = touches(run, s);
            await send(run, s);
            if (sync === "interval" && run === back) await markWritten(back, touched);
          }
        for (const run of [live, back]) await settle(run, 2 * S, 50);
        compare(live, back, `after step ${step} (${how} cut)`, !stepUnsynced, lost);
        await stop(live);
        live = back;
        unsynced.clear();
        // The readings just sent to it started their on-delays afresh or confirmed restored ones:
        // a new `hold/` is a checkpoint, which the next acknowledgement that syncs covers.
        for (const d of Object.keys(HELD)) unsynced.add(d);
        stepUnsynced = false;
        for (const a of live.gw.engine.openAlerts()) told.add(a.id);
      }
    }
  } catch (err) {
    // The walk's own failure says more than what the cleanup left.
    await cleanup();
    throw err;
  }
  // A gateway that does not stop after a walk that passed is a failure too.
  const left = await cleanup();
  if (left.length > 0) throw new Error(`seed ${seed} (${sync}) at the end: ${left.join("; ")}; ${replay}`);
}

/** Steps per seed: enough for several cuts each, the six runs well under 30 s together. */
const STEPS = 40;

describe.concurrent("power cuts and crashes at random moments: no acknowledged alert is forgotten", () => {
  const replay = process.env.SEED;
  if (replay !== undefined) {
    const sync: Sync =
      process.env.SYNC === "always" || process.env.SYNC === "interval" ? process.env.SYNC : "batch";
    it(
      `seed ${replay} (${sync})`,
      (ctx) => runSeed(Number(replay), sync, Number(process.env.STEPS ?? STEPS), ctx),
      120_000,
    );
    return;
  }

  // Seeds that found a bug, kept as regression cases (each failed before its fix). Those found
  // before crashes could be followed by a power cut during the restart walk as they did then.
  it(
    "seed 5 (batch): escalations due while the gateway was down (20 min) are counted at the start, the next one on schedule",
    (ctx) =>
      // Before: one escalation at the start, the next an interval after it (level 1, would be 3).
      runSeed(5, "batch", STEPS, ctx, { powerAfterCrash: false }),
    60_000,
  );
  it(
    "seed 3 (always): an escalation due during a 3-minute downtime, the next one due when it would have been",
    (ctx) =>
      // Before: the next one 2 minutes late (an interval after the start, not after its due time).
      runSeed(3, "always", STEPS, ctx, { powerAfterCrash: false }),
    60_000,
  );

  // Found by this test: a P2 whose shelving ran out while the gateway was down was released at the
  // start as if the shelving ended then: its unacknowledged time, and so its escalation, counted
  // from the start, not from the shelving's end (TAMPER/d-1 shelved 5 min, 20 min down: level 0,
  // would be 2). gateway/alerts/shelving.ts fireOverdueSteps.
  it(
    "seed 16 (batch): a shelving that ran out while the gateway was down: the escalation counts from its end",
    (ctx) => runSeed(16, "batch", STEPS, ctx, { powerAfterCrash: false }),
    60_000,
  );

  // Found by this test: a segment rolled while syncs were held; the power cut kept the new
  // segment's first record (the end of GAS_VALVE_NOT_CLOSED's on-delay) and tore the old one's
  // tail (the alert's raise): the start replayed the end without the alert, and the gas detector's
  // next report started the on-delay afresh: the alert forgotten. A roll now syncs the old segment
  // first (gateway/journal/group-commit.ts retire).
  it(
    "seed 329 (batch, 60 steps): a power cut tearing a rolled segment's tail loses nothing the next segment depends on",
    (ctx) => runSeed(329, "batch", 60, ctx, { powerAfterCrash: false }),
    60_000,
  );

  // Found by this test: a torn cut kept the unsynced tail's sectors but its first (a hole at the
  // segment's start, records after it): DOOR_HELD_OPEN's re-raise by its on-delay was in the hole,
  // the end of the on-delay after it; the start replayed the end and came back with the alert
  // cleared (count 1, would be active, count 2). Recovery now ends the newest segment at a hole
  // past what a synced record names (gateway/journal/recovery.ts holeInUnsyncedTail). Before: 11
  // runs in 16 failed under load; after: 0 in 16.
  it(
    "seed 49 (batch, 60 steps, sectors in any order): nothing after a hole in the unsynced tail is replayed",
    (ctx) => runSeed(49, "batch", 60, ctx, { sectors: true, powerAfterCrash: false }),
    60_000,
  );

  // Gaps in the model, not the gateway (each failed before the model learnt it):
  // - an operator's ack in flight for a POWER_FAIL raised by its on-delay's end while no sync
  //   completed; a torn cut took the raise record (and the ack's after it) away, the restart raised
  //   it anew at k-1's report, and the re-sent ack was refused `unknown-alert` (the model kept it acked);
  // - a door closed with DOOR_HELD_OPEN's off-delay pending (not stored), 20 min down: the shelving
  //   ran out first in the restarted gateway, which re-annunciated it (cleared-unacknowledged, the
  //   model closed it);
  // - a cut 1.3 s after a clock step with nothing acknowledged since: the step's records had no
  //   files to be covered by, so the synced step was taken for a sync that never came (and the
  //   walk then hung in stop(), its syncs still held);
  // - away mode set (hh-1), the clock set back an hour, a power cut before the step's records were
  //   synced, 20 min down: the restart moved away mode's start by less than the step (by design,
  //   "A clock set back across a restart"), so d-1's reading after it fell within the exit grace
  //   there and ended away mode in the model (4 runs in 6 failed before: the cut falls before or
  //   after the step's sync as the pool's timing goes);
  // - under `interval`, a request sent again after a cut (p-1 back in service) was acknowledged by
  //   the restarted gateway 168 ms before the next cut, no sync yet: that cut lost it, as the docs
  //   let `interval` lose (up to `syncInterval`), and the model, which had not counted the
  //   acknowledgements of requests sent again, kept p-1 in service (2 runs in 6 failed before).
  // - a clock set back an hour, a cut just past the synced part (sectors in any order) that took
  //   the step's records, 180 s down: the restart ran the pending on-delays on from where they
  //   stood (by design), the model ran them through the time down and raised DOOR_HELD_OPEN and
  //   GAS_VALVE_NOT_CLOSED (TEAR=pages seed 7, batch and interval, 1 run in 5 under load).
  // Found by this test: a press re-sent right after a power cut, 2 minutes after the pendant's
  // acknowledged call, came while the start held the timers (the call's window had run out while the
  // gateway was down, its timer not yet fired) and was counted as a repeat of the acknowledged call:
  // no new alert. gateway/alerts/engine.ts raise() ends a window that ran out first.
  it(
    "seed 45 (batch): a press after the last call's window ran out is a new call, also while a start holds the timers",
    (ctx) => runSeed(45, "batch", STEPS, ctx, { powerAfterCrash: false }),
    60_000,
  );
  // Found by this test: a device put back in service wrote its service record's end before its
  // alerts' return; a torn tail kept the first without the second, the restart found the device in
  // service with its P1's escalation counted from before it went out of service (level 3 at once),
  // and the request sent again was refused. gateway/alerts/service.ts writes the end last.
  it(
    "seed 68 (interval, 60 steps): back in service, torn between its records: the request sent again completes it",
    (ctx) => runSeed(68, "interval", 60, ctx, { powerAfterCrash: false }),
    60_000,
  );
  it(
    "seed 17 (interval, 60 steps): a clock step's records are covered by the sync that follows it",
    (ctx) => runSeed(17, "interval", 60, ctx, { powerAfterCrash: false }),
    60_000,
  );
  it(
    "seed 6 (interval, 60 steps): away mode's exit grace after a clock step the cut took away",
    (ctx) => runSeed(6, "interval", 60, ctx, { powerAfterCrash: false }),
    60_000,
  );
  it(
    "seed 19 (interval, 60 steps): a re-sent ack for an alert the cut took away is refused",
    (ctx) => runSeed(19, "interval", 60, ctx, { powerAfterCrash: false }),
    60_000,
  );
  it(
    "seed 11 (interval, 60 steps): a pending off-delay across the cut clears later",
    (ctx) => runSeed(11, "interval", 60, ctx, { powerAfterCrash: false }),
    60_000,
  );
  it(
    "seed 182 (interval, 60 steps): a request sent again after a cut may be lost by the next cut within the period",
    (ctx) => runSeed(182, "interval", 60, ctx, { powerAfterCrash: false }),
    60_000,
  );

  for (const [seed, sync] of [
    [1, "always"],
    [2, "batch"],
    [4, "batch"],
    [7, "always"],
    [3, "interval"],
    [8, "interval"],
  ] as const)
    it(`seed ${seed} (${sync})`, (ctx) => runSeed(seed, sync, STEPS, ctx), 60_000);
  // Torn cuts that keep the unsynced tail's sectors in any order (holes before valid records).
  it(
    "seed 7 (batch, sectors in any order)",
    (ctx) => runSeed(7, "batch", 60, ctx, { sectors: true }),
    60_000,
  );
  // A crash, then a power cut during the restart: under `interval` the killed gateway had
  // acknowledged an EMERGENCY_CALL's records (written) that no sync had reached yet. Without the
  // start's sync of the last segment (gateway/journal/journal.ts, where the start resumes or rolls)
  // the second start forgot the alert: 3 runs in 3 (seed 5 likewise, a TAMPER); 4 of 40 interval
  // walks in a sweep, none of 40 under batch (an acknowledgement there waits for the sync).
  it(
    "seed 9 (interval, 60 steps, sectors in any order): a crash, then a power cut during the restart: what was acknowledged is kept",
    (ctx) => runSeed(9, "interval", 60, ctx, { sectors: true }),
    60_000,
  );
});
