import { afterAll, describe, expect, it } from "vitest";
import { suiteTempDir } from "../support/temp-dir.js";
import { Operator } from "./support/operator.js";
import { PendantFleet, type PendantSpec, type Press } from "./support/pendants.js";
import {
  assertBuilt,
  type Exit,
  gatewaySite,
  killAllSpawned,
  type LogLine,
  LogTail,
  sleep,
  waitUntil,
} from "./support/processes.js";
import { runSeed, seededRng, shuffle, uniform } from "./support/rng.js";
import {
  type AlertMsg,
  ackKept,
  type Causes,
  escalationOnTime,
  judgeAlert,
  PRESS_TRANSITIONS,
  pct,
  reachable,
} from "./support/verdict.js";

const SITE = "crash";
const OPS = { name: "ops", password: "ops-pw" };
const KILLS = 20;
const TERMS = 3;
/** Presses per second, all pendants together. */
const RATE = Number(process.env.LINLI_CRASH_RATE ?? 25);
/** 20 pendants get 60 % of the presses (their calls never end), 60 press now and then (calls end, alerts close). */
const HOT = 20;
const COOL = 60;
/** An escalation as the gateway logged it ("alert escalated", with the level it reached). */
interface EscalationLogged {
  id: string;
  time: number;
  gen: number;
  level: number | null;
}

const WINDOW_MS = 10_000;
const ESCALATION = { p1: "3s", factor: 2, maxInterval: "8s" };
const SETTLE_BUDGET_MS = 40_000;

interface KillSnapshot {
  n: number;
  signal: NodeJS.Signals;
  gen: number;
  signalAt: number;
  exit: Exit & { forced: boolean };
  pre: Map<string, AlertMsg>;
  preEsc: Map<string, { level: number; nextAt: number | null }>;
  /** Per device: a press the console had not seen reflected may have been processed. */
  pressUnseen: Map<string, boolean>;
  /** Per device: the last press the gateway surely had (gateway processed it at or after this). */
  lastSurePress: Map<string, number>;
  /** Per alert id: an acknowledgement sent after the console's last message on it. */
  ackUnseen: Set<string>;
  /** Per alert id: what an acknowledgement answered before the kill must leave behind. */
  ackExpect: Map<string, "acknowledged" | "closed">;
  acksInFlight: number;
  spawnAt: number;
  startedAt: number;
  obsAt: number;
  post: Map<string, AlertMsg>;
  nextSignalAt: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.floor(s.length / 2)] as number) : Number.NaN;
}

describe("crash and restart (real gateway process)", () => {
  const dir = suiteTempDir("linli-crash-");
  afterAll(async () => {
    await killAllSpawned();
  });

  it(`keeps alerts, acknowledgements and escalations across ${KILLS} SIGKILLs and ${TERMS} SIGTERMs`, async () => {
    assertBuilt();
    const seed = runSeed();
    const rng = seededRng(seed);
    const specs: PendantSpec[] = [];
    for (let i = 0; i < HOT + COOL; i++) specs.push({ id: `pd-${i}`, password: `pw-${i}` });

    const tail = new LogTail("crash");
    const escLog: EscalationLogged[] = [];
    const errorLines: string[] = [];
    const onLine = (l: LogLine) => {
      tail.add(l);
      const j = l.json;
      if (j?.transition === "escalated" && typeof j.alertId === "string" && typeof j.time === "number") {
        const level = typeof j.escalationLevel === "number" ? j.escalationLevel : null;
        escLog.push({ id: j.alertId, time: j.time, gen: l.gen, level });
      }
      const isError = (typeof j?.level === "number" && j.level >= 50) || l.stream === "stderr";
      if (isError && errorLines.length < 20) errorLines.push(`[gw#${l.gen}] ${l.text}`);
    };
    const site = await gatewaySite({
      dir,
      site: SITE,
      operator: OPS,
      pendants: specs,
      config: { alerts: { emergencyCallWindow: `${WINDOW_MS / 1000}s`, escalation: ESCALATION } },
      onLine,
    });
    const port = site.mqttPort;
    console.log(
      `crash: seed ${seed} (replay with LINLI_CRASH_SEED=${seed}); ${site.dataDir ? `--data-dir ${site.dataDir}` : "this build has no --data-dir: every restart starts empty"}`,
    );
    let gen = 0;
    const startGateway = site.start;

    const fleet = new PendantFleet(port, specs);
    const operator = new Operator({
      port,
      site: SITE,
      name: OPS.name,
      password: OPS.password,
      rng,
      ackShare: 0.35,
      ackDelayMs: [300, 1500],
    });
    const hot = specs.slice(0, HOT).map((s) => s.id);
    const cool = specs.slice(HOT).map((s) => s.id);
    const kinds = shuffle(rng, [
      ...Array<NodeJS.Signals>(KILLS).fill("SIGKILL"),
      ...Array<NodeJS.Signals>(TERMS).fill("SIGTERM"),
    ]);
    const snapshots: KillSnapshot[] = [];
    const startupMs: number[] = [];
    let presser: NodeJS.Timeout | null = null;
    let endAt = 0;
    let settleSpent = 0;

    try {
      let gw = await startGateway(gen);
      startupMs.push((gw.startedAt ?? Date.now()) - gw.spawnedAt);
      await operator.connect(gen);
      operator.startAcking();
      fleet.resume(gen);

      // A steady rate, whatever the timer's lateness: presses owed since t0 are made each tick.
      const t0 = Date.now();
      let issued = 0;
      presser = setInterval(() => {
        const owed = Math.floor(((Date.now() - t0) * RATE) / 1000) - issued;
        for (let i = 0; i < owed; i++) {
          const pool = rng() < 0.6 ? hot : cool;
          fleet.press(pool[Math.floor(rng() * pool.length)] as string);
          issued++;
        }
      }, 50);
      await sleep(5000); // alerts raised, acknowledged and escalating before the first kill

      for (let n = 0; n < kinds.length; n++) {
        await sleep(uniform(rng, 1000, 3000));
        const signal = kinds[n] as NodeJS.Signals;
        // The base stations and the console stop starting new things; what is in flight stays in flight.
        fleet.hold();
        operator.stopAcking();
        const signalAt = Date.now();
        if (n > 0) (snapshots[n - 1] as KillSnapshot).nextSignalAt = signalAt;
        tail.note(`kill ${n}: ${signal} to gateway #${gen}`);
        const exit = await gw.stop(signal);
        // Everything the dead gateway sent has been read once our sockets see the close.
        await waitUntil(() => fleet.allDisconnected() && operator.disconnected, 5000);
        const snap = snapshotAtKill(n, signal, gen, signalAt, exit, operator, fleet);
        await operator.disconnect();

        gen++;
        const spawnAt = Date.now();
        gw = await startGateway(gen);
        startupMs.push((gw.startedAt ?? Date.now()) - gw.spawnedAt);
        await operator.connect(gen);
        // Wait for the restored alerts; longer only for those that cannot have closed meanwhile. A gateway that
        // loses them costs at most SETTLE_BUDGET_MS over the whole run (then 1.5 s per restart).
        const settleStart = Date.now();
        const mayBeGone = (topic: string) => {
          const pre = snap.pre.get(topic) as AlertMsg;
          const sure = snap.lastSurePress.get(pre.deviceId) ?? pre.updatedAt;
          return reachable(pre.state, {
            press: snap.pressUnseen.get(pre.deviceId) ?? false,
            ack: snap.ackUnseen.has(pre.id),
            window: Date.now() >= sure + WINDOW_MS,
          }).has("closed");
        };
        const stillMissing = await operator.settle(
          snap.pre.keys(),
          mayBeGone,
          Math.max(1500, Math.min(6000, SETTLE_BUDGET_MS - settleSpent)),
        );
        settleSpent += Date.now() - settleStart;
        tail.note(
          `gateway #${gen} started at ${gw.startedAt}; console has its retained view (${stillMissing.length} of ${snap.pre.size} topics not back: ${stillMissing.slice(0, 5).join(" ")})`,
        );
        snapshots.push({
          ...snap,
          spawnAt,
          startedAt: gw.startedAt ?? spawnAt,
          obsAt: Date.now(),
          post: new Map(operator.view),
          nextSignalAt: Number.POSITIVE_INFINITY,
        });
        operator.startAcking();
        fleet.resume(gen);
      }

      // Let the last restart's escalations fall due, then stop pressing and let everything land.
      await sleep(8000);
      (snapshots[snapshots.length - 1] as KillSnapshot).nextSignalAt = Date.now();
      clearInterval(presser);
      presser = null;
      await waitUntil(() => fleet.pending === 0, 15_000);
      await sleep(1500);
      endAt = Date.now();
      operator.stopAcking();
      await fleet.close();
      await operator.disconnect();
      const last = await gw.stop("SIGTERM");
      expect(last.forced, "the final SIGTERM did not stop the gateway").toBe(false);
    } catch (err) {
      console.log(
        `crash: harness stopped: ${(err as Error).message}\nlast gateway log lines:\n${tail.last(50).join("\n")}`,
      );
      throw err;
    } finally {
      if (presser) clearInterval(presser);
      operator.stopAcking();
      await fleet.close();
      await operator.disconnect();
    }

    await tail.close();
    const r = judge(snapshots, fleet.presses, operator, escLog, WINDOW_MS);
    const lines = [
      `crash: ${KILLS} SIGKILL + ${TERMS} SIGTERM over ${Math.round((endAt - (snapshots[0]?.signalAt ?? endAt)) / 1000)} s, ${HOT + COOL} pendants, ${RATE} presses/s`,
      `crash: presses PUBACKed: ${r.acked} (of ${fleet.presses.length} pressed; ${fleet.refused} refused by a full base-station queue; ${fleet.pending} never PUBACKed)`,
      `crash: PUBACKed presses that became an alert: ${r.becameAlert}/${r.acked} (${pct(r.becameAlert, r.acked)})`,
      `crash: alerts open before the kills (console view, summed over kills): ${r.openBefore}`,
      `crash: still open after the restart with the same id and state: ${r.same + r.moved}/${r.openBefore} (${pct(r.same + r.moved, r.openBefore)}): ${r.same} unchanged, ${r.moved} moved by a press, ack or call-window end the console had not seen yet; ${r.lost} lost`,
      `crash: acknowledgements kept: ${r.acksKept}/${r.acksExpected} (${pct(r.acksKept, r.acksExpected)}); in flight at a kill (not counted): ${r.acksInFlight}`,
      `crash: escalations on time after restart: ${r.escOnTime}/${r.escChecked} (${pct(r.escOnTime, r.escChecked)}); latest ${fmtMs(r.escMaxLate)} after due; level not continued ${r.escLevelWrong}; not checkable: ${r.escDueBeforeKill} due before the kill, ${r.escNextKillFirst} due after the next kill, ${r.escAckInFlight} with an ack in flight, ${r.escAckedAfter} acknowledged after the restart`,
      `crash: escalation lateness: due while down (from "gateway started"): ${spread(r.escLateOverdue)}; due after it was back (from the tick due): ${spread(r.escLateScheduled)}`,
      `crash: closed alerts back after a restart: ${r.ghosts}; alert ids seen for two devices: ${operator.idConflicts.length}`,
      `crash: start to "gateway started": median ${median(startupMs)} ms, max ${Math.max(...startupMs)} ms; SIGTERM exits: ${snapshots.filter((s) => s.signal === "SIGTERM" && s.exit.code === 0 && !s.exit.forced).length}/${TERMS} clean`,
    ];
    console.log(lines.join("\n"));
    const failed =
      r.acked === 0 ||
      r.becameAlert !== r.acked ||
      r.openBefore === 0 ||
      r.lost > 0 ||
      r.acksExpected === 0 ||
      r.acksKept !== r.acksExpected ||
      r.escChecked === 0 ||
      r.escOnTime !== r.escChecked ||
      r.ghosts > 0 ||
      operator.idConflicts.length > 0;
    if (failed) {
      console.log(
        [
          "crash: findings:",
          ...r.findings.lines(),
          ...(operator.idConflicts.length
            ? [`  ids on two devices: ${operator.idConflicts.slice(0, 5).join("; ")}`]
            : []),
          ...(errorLines.length ? ["crash: gateway error lines:", ...errorLines.slice(0, 10)] : []),
          "crash: last gateway log lines:",
          ...tail.last(50),
        ].join("\n"),
      );
    }
    expect.soft(r.acked, "presses PUBACKed").toBeGreaterThan(0);
    expect.soft(r.becameAlert, "PUBACKed presses that became an alert").toBe(r.acked);
    expect.soft(r.openBefore, "alerts open before the kills").toBeGreaterThan(0);
    expect.soft(r.lost, "open alerts lost or changed across restarts").toBe(0);
    expect.soft(r.acksExpected, "acknowledgements answered before a kill").toBeGreaterThan(0);
    expect.soft(r.acksKept, "acknowledgements kept").toBe(r.acksExpected);
    expect.soft(r.escChecked, "escalations checked after restarts").toBeGreaterThan(0);
    expect.soft(r.escOnTime, "escalations on time after restart").toBe(r.escChecked);
    expect.soft(r.ghosts, "closed alerts back after a restart").toBe(0);
    expect.soft(operator.idConflicts, "alert ids seen for two devices").toEqual([]);
    const unclean = snapshots.filter((s) => s.signal === "SIGTERM" && (s.exit.code !== 0 || s.exit.forced));
    expect
      .soft(
        unclean.map((s) => `kill ${s.n}: ${JSON.stringify(s.exit)}`),
        "SIGTERM exits",
      )
      .toEqual([]);
  }, 360_000);
});

/** What the console saw of an alert and its device's last presses before `until`, for a finding. */
function history(id: string, device: string, until: number, operator: Operator, presses: Press[]): string {
  const seen = operator.seen
    .filter((s) => s.msg?.id === id)
    .slice(-6)
    .map(
      (s) =>
        `      seen ${s.receivedAt} gw#${s.gen}${s.retain ? " retained" : ""}: ${s.msg?.transition} ${s.msg?.state} updatedAt ${s.msg?.updatedAt} count ${s.msg?.count}`,
    );
  const ps = presses
    .filter((p) => p.device === device && p.attempts > 0 && p.firstSentAt <= until)
    .slice(-3)
    .map(
      (p) =>
        `      press seq ${p.seq} sent ${p.firstSentAt}${p.attempts > 1 ? ` (x${p.attempts}, last ${p.lastSentAt})` : ""} PUBACK ${p.ackedAt ?? "none"} gw#${p.ackGen ?? "-"}`,
    );
  return [...seen, ...ps].join("\n");
}

function spread(xs: number[]): string {
  if (xs.length === 0) return "none";
  return `${xs.length}, median ${Math.round(median(xs))} ms, max ${Math.round(Math.max(...xs))} ms`;
}

function fmtMs(ms: number): string {
  return Number.isFinite(ms) ? `${Math.round(ms)} ms` : "never";
}

/** What the console and the base stations knew at the moment the gateway was gone. */
function snapshotAtKill(
  n: number,
  signal: NodeJS.Signals,
  gen: number,
  signalAt: number,
  exit: Exit & { forced: boolean },
  operator: Operator,
  fleet: PendantFleet,
): Omit<KillSnapshot, "spawnAt" | "startedAt" | "obsAt" | "post" | "nextSignalAt"> {
  const pre = new Map(operator.view);
  const preEsc = new Map(operator.escState);
  // The latest press-driven change the console saw, per device (any gateway process so far). A retained
  // copy after a restart carries its last change's transition: an acknowledgement's time is no press time.
  const reflected = new Map<string, number>();
  for (const s of operator.seen) {
    if (!s.msg || !PRESS_TRANSITIONS.has(s.msg.transition)) continue;
    const d = s.msg.deviceId;
    reflected.set(d, Math.max(reflected.get(d) ?? 0, s.msg.updatedAt));
  }
  const pressUnseen = new Map<string, boolean>();
  const lastSurePress = new Map<string, number>();
  for (const p of fleet.presses) {
    if (p.attempts === 0) continue;
    const seenUpTo = reflected.get(p.device) ?? 0;
    if (p.ackedAt === null || p.lastSentAt > seenUpTo) pressUnseen.set(p.device, true);
    if (p.ackedAt !== null) {
      lastSurePress.set(p.device, Math.max(lastSurePress.get(p.device) ?? 0, p.firstSentAt, seenUpTo));
    }
  }
  for (const [d, t] of reflected) lastSurePress.set(d, Math.max(lastSurePress.get(d) ?? 0, t));

  const ackUnseen = new Set<string>();
  const ackExpect = new Map<string, "acknowledged" | "closed">();
  let acksInFlight = 0;
  for (const a of operator.acks) {
    if (a.sentGen !== gen) continue;
    const lastMsg = operator.lastReceipt.get(a.alertId) ?? 0;
    if (a.sentAt > lastMsg) ackUnseen.add(a.alertId);
    if (a.answeredGen !== gen) {
      acksInFlight++;
      continue;
    }
    if (a.ok && a.sentAt > lastMsg && pre.get(a.topic)?.id === a.alertId) {
      ackExpect.set(a.alertId, a.result === "closed" ? "closed" : "acknowledged");
    }
  }
  for (const a of pre.values()) if (a.state === "active-acknowledged") ackExpect.set(a.id, "acknowledged");
  return {
    n,
    signal,
    gen,
    signalAt,
    exit,
    pre,
    preEsc,
    pressUnseen,
    lastSurePress,
    ackUnseen,
    ackExpect,
    acksInFlight,
  };
}

interface Result {
  acked: number;
  becameAlert: number;
  openBefore: number;
  same: number;
  moved: number;
  lost: number;
  acksExpected: number;
  acksKept: number;
  acksInFlight: number;
  escChecked: number;
  escOnTime: number;
  escMaxLate: number;
  escLevelWrong: number;
  escDueBeforeKill: number;
  escNextKillFirst: number;
  escAckInFlight: number;
  escAckedAfter: number;
  /** Lateness (ms) of escalations that fell due while the gateway was down (from its start) / after it was back. */
  escLateOverdue: number[];
  escLateScheduled: number[];
  ghosts: number;
  findings: Findings;
}

/** Findings by kind: a count and the first few examples of each, for the failure report. */
class Findings {
  private readonly kinds = new Map<string, { n: number; examples: string[] }>();
  add(kind: string, example: string): void {
    const k = this.kinds.get(kind) ?? { n: 0, examples: [] };
    k.n++;
    if (k.examples.length < 3) k.examples.push(example);
    this.kinds.set(kind, k);
  }
  lines(): string[] {
    return [...this.kinds].flatMap(([kind, k]) => [
      `  ${kind}: ${k.n}`,
      ...k.examples.map((e) => `    ${e}`),
    ]);
  }
}

function judge(
  snapshots: KillSnapshot[],
  presses: Press[],
  operator: Operator,
  escLog: EscalationLogged[],
  windowMs: number,
): Result {
  const r: Result = {
    acked: 0,
    becameAlert: 0,
    openBefore: 0,
    same: 0,
    moved: 0,
    lost: 0,
    acksExpected: 0,
    acksKept: 0,
    acksInFlight: 0,
    escChecked: 0,
    escOnTime: 0,
    escMaxLate: Number.NEGATIVE_INFINITY,
    escLevelWrong: 0,
    escDueBeforeKill: 0,
    escNextKillFirst: 0,
    escAckInFlight: 0,
    escAckedAfter: 0,
    escLateOverdue: [],
    escLateScheduled: [],
    ghosts: 0,
    findings: new Findings(),
  };

  // Presses: an EMERGENCY_CALL of that device seen by the console, changed by a press at or after it was sent
  // (live), or restored after a restart (retained) with a change at or after it.
  const evidence = new Map<string, number[]>();
  for (const s of operator.seen) {
    if (s.msg?.code !== "EMERGENCY_CALL") continue;
    if (!(PRESS_TRANSITIONS.has(s.msg.transition) || s.retain)) continue;
    const list = evidence.get(s.msg.deviceId) ?? [];
    list.push(s.msg.updatedAt);
    evidence.set(s.msg.deviceId, list);
  }
  const latest = new Map([...evidence].map(([d, ts]) => [d, Math.max(...ts)]));
  for (const p of presses) {
    if (p.ackedAt === null) continue;
    r.acked++;
    if ((latest.get(p.device) ?? Number.NEGATIVE_INFINITY) >= p.firstSentAt) r.becameAlert++;
    else r.findings.add("PUBACKed press, no alert seen", `${p.device} seq ${p.seq} sent ${p.firstSentAt}`);
  }

  for (const k of snapshots) {
    r.acksInFlight += k.acksInFlight;
    for (const [topic, pre] of k.pre) {
      r.openBefore++;
      const post = k.post.get(topic);
      const sure = k.lastSurePress.get(pre.deviceId) ?? pre.updatedAt;
      const causes: Causes = {
        press: k.pressUnseen.get(pre.deviceId) ?? false,
        ack: k.ackUnseen.has(pre.id),
        window: k.obsAt >= sure + windowMs,
      };
      const j = judgeAlert(pre, post, causes, sure + windowMs);
      if (j.outcome === "same") r.same++;
      else if (j.outcome === "moved") r.moved++;
      else {
        r.lost++;
        r.findings.add(
          "open alert lost or changed",
          `kill ${k.n} (${k.signal}, gateway gone ${k.exit.at}, console looked ${k.obsAt}): ${pre.id} ${pre.deviceId} ${pre.state}: ${j.why}\n${history(pre.id, pre.deviceId, k.exit.at, operator, presses)}`,
        );
      }

      const expectAck = k.ackExpect.get(pre.id);
      if (expectAck) {
        r.acksExpected++;
        if (ackKept(expectAck, pre, post, causes)) r.acksKept++;
        else {
          r.findings.add(
            "acknowledgement lost",
            `kill ${k.n} (${k.signal}): ${pre.id}: after restart ${post?.id === pre.id ? `${post.state}, ackedBy ${post.ackedBy}` : "no such alert"}`,
          );
        }
      }

      // Escalation: an unacknowledged P1 whose next escalation was still to come when the gateway died.
      if (pre.priority !== 1 || pre.state === "active-acknowledged") continue;
      const esc = k.preEsc.get(pre.id);
      if (!esc || esc.nextAt === null) continue;
      if (esc.nextAt <= k.exit.at) {
        r.escDueBeforeKill++;
        continue;
      }
      if (causes.ack) {
        r.escAckInFlight++;
        continue;
      }
      const wouldHave = Math.max(Math.ceil(esc.nextAt / 1000) * 1000, k.startedAt);
      if (wouldHave + 1000 >= k.nextSignalAt) {
        r.escNextKillFirst++;
        continue;
      }
      const after = k.gen + 1;
      // The console's own acknowledgement after the restart, before it was due, stops it legitimately.
      if (
        operator.acks.some((a) => a.sentGen === after && a.alertId === pre.id && a.sentAt < wouldHave + 1000)
      ) {
        r.escAckedAfter++;
        continue;
      }
      // Gateway log times of this alert's escalations by the restarted gateway: the first is the one judged
      // (the console may have missed it: one that fell due while the gateway was down fires before it is back).
      const loggedEsc = escLog
        .filter((e) => e.gen === after && e.id === pre.id)
        .sort((a, b) => a.time - b.time);
      const logged = loggedEsc.map((e) => e.time);
      const received = operator.escalations.filter((e) => e.gen === after && e.id === pre.id);
      const firstReceived = received[0];
      const times = [...logged, ...received.map((e) => e.receivedAt)];
      const firedAt = times.length ? Math.min(...times) : null;
      const verdict = escalationOnTime({ nextAt: esc.nextAt, startedAt: k.startedAt, firedAt });
      // Level of the first escalation after the restart: as the gateway logged it (the console may have missed
      // it, and an acknowledgement after it starts a new chain); else the first received, less those logged before it.
      const firstLevel =
        loggedEsc[0]?.level ??
        (firstReceived
          ? firstReceived.level - Math.max(0, logged.filter((t) => t <= firstReceived.receivedAt).length - 1)
          : null);
      const levelOk = firstLevel === null || firstLevel === esc.level + 1;
      r.escChecked++;
      if (Number.isFinite(verdict.lateMs)) {
        r.escMaxLate = Math.max(r.escMaxLate, verdict.lateMs);
        (esc.nextAt < k.startedAt ? r.escLateOverdue : r.escLateScheduled).push(verdict.lateMs);
      }
      if (!levelOk) r.escLevelWrong++;
      if (verdict.onTime && levelOk) r.escOnTime++;
      else {
        r.findings.add(
          firedAt === null
            ? "escalation never came"
            : levelOk
              ? "escalation late or early"
              : "escalation level reset",
          `kill ${k.n} (${k.signal}): ${pre.id} due ${esc.nextAt} (level ${esc.level + 1}), gateway back ${k.startedAt}: ${firedAt === null ? "never fired" : `fired ${firedAt - esc.nextAt} ms after due${firstLevel !== null ? ` at level ${firstLevel}` : ""}`}`,
        );
      }
    }
    // An alert the console saw closed before the kill must not come back.
    for (const post of k.post.values()) {
      const closedAt = operator.closedIds.get(post.id);
      if (closedAt !== undefined && closedAt <= k.exit.at) {
        r.ghosts++;
        r.findings.add("closed alert open again", `kill ${k.n}: ${post.id} ${post.deviceId} ${post.state}`);
      }
    }
  }
  return r;
}
