/**
 * Supervision of silence: a device that stops talking (DEVICE_LOST) and a
 * household where nobody has done anything for the welfare period
 * (WELFARE_CHECK). One wheel timer per device and per household, re-armed by
 * traffic, so 20,000 devices cost 20,000 list nodes, not 20,000 Node timers.
 *
 * Welfare care per household (telecare practice, DESIGN "Welfare checks"):
 * quiet hours in the site's time zone (a check that falls due in them is
 * raised when they end) and away mode (monitoring pauses until the resident
 * is back: an explicit `away:false`, the `until` time, or the household's
 * next activity after the exit grace).
 */

import type { Clock } from "../core/index.js";
import { INACTIVE } from "../devices/index.js";
import type { AlertEngine } from "./alerts/engine.js";
import { LocalClock, parseQuietHours, type QuietHours } from "./alerts/quiet-hours.js";
import { moveLive } from "./moved-times.js";
import type { Publisher } from "./northbound/publisher.js";
import type { DeviceEntry, HouseholdEntry, Registry } from "./registry.js";
import { type TimerWheel, WheelTimer } from "./time/timer-wheel.js";

/** Away mode of a household, as kept across a restart. */
export interface AwayRecord {
  by: string;
  /** The operator account that set it; absent in records written before it existed. */
  account?: string | null;
  since: number;
  until: number | null;
}

export interface WelfareCareOptions {
  /** IANA zone of the site (quiet hours); default the system's. */
  timeZone?: string;
  /** Household id -> "HH:MM-HH:MM". */
  quietHours?: ReadonlyMap<string, string>;
  /** Activity this soon after away mode is set is the resident leaving (default 15 min). */
  awayExitGraceMs?: number;
  /** The journal's side: away mode set (a record) or ended (null). */
  recordAway?: (householdId: string, away: AwayRecord | null) => void;
  /** The journal's side: a household's welfare period start (welfareFrom) changed. */
  recordHousehold?: (household: HouseholdEntry) => void;
}

export interface MonitoringStatus {
  household: string;
  state: "monitored" | "away";
  by: string;
  /** The operator account whose request changed it (`by` is free text); null: the gateway. */
  account: string | null;
  since: number;
  until: number | null;
  reason: string | null;
}

/** Per household, only for households in the config (bounded by them). */
class HouseholdCare {
  quiet: QuietHours | null = null;
  away = false;
  awayBy = "";
  awayAccount: string | null = null;
  awaySince = 0;
  awayUntil: number | null = null;
  awayTimer: WheelTimer | null = null;
  /** The welfare check fell due in quiet hours and waits for their end. */
  deferred = false;
  constructor(readonly household: HouseholdEntry) {}
}

export class Supervisor {
  private readonly care = new Map<string, HouseholdCare>();
  private readonly local: LocalClock;
  private readonly quietHours: ReadonlyMap<string, string>;
  // Not readonly: a live reload changes them (gateway/reload.ts).
  private awayExitGraceMs: number;
  private lostGraceMs: number;
  private readonly recordAway: (householdId: string, away: AwayRecord | null) => void;
  private readonly recordHousehold: (household: HouseholdEntry) => void;

  constructor(
    private readonly clock: Clock,
    private readonly wheel: TimerWheel,
    private readonly engine: AlertEngine,
    private readonly publisher: Publisher,
    lostGraceMs: number,
    opts: WelfareCareOptions = {},
  ) {
    this.lostGraceMs = lostGraceMs;
    this.local = new LocalClock(opts.timeZone);
    this.quietHours = opts.quietHours ?? new Map();
    this.awayExitGraceMs = opts.awayExitGraceMs ?? 15 * 60_000;
    this.recordAway = opts.recordAway ?? (() => {});
    this.recordHousehold = opts.recordHousehold ?? (() => {});
  }

  /**
   * Arms every heartbeat device's lost timer and every household's welfare
   * timer. After a restart they run on from the journaled last-seen and
   * last-activity times: a device that was silent before the restart is still
   * silent, and a welfare period does not start again because the gateway did.
   *
   * `downForMs`, how long the gateway was not running: a device's silence is
   * counted while the gateway could hear it, not while it was down (its
   * devices could not reach it), so each lost timer runs on from where it
   * stood at the stop. Counted, a 15-minute update raised DEVICE_LOST for every
   * device heard in the last 11 minutes before it, at once at start, before
   * any could reconnect. The welfare period does run on through the downtime:
   * it is about the resident, whose activity meanwhile nobody saw, and a check
   * raised late could be a call missed.
   */
  start(registry: Registry, downForMs = 0): void {
    const now = this.clock.now();
    const down = Math.max(0, downForMs);
    for (const d of registry.devices.values())
      this.armLost(d, d.lastSeen > 0 ? Math.min(now, d.lastSeen + down) : now);
    for (const h of registry.households.values()) {
      const q = this.quietHours.get(h.id);
      if (q !== undefined) this.careFor(h).quiet = parseQuietHours(q);
      // From the last activity, or from when a reload started the period if later (welfareFrom).
      const from = Math.max(h.lastActivity, h.welfareFrom);
      // A WELFARE_CHECK still active has fired for this silent period (once per period, as while
      // running; the next activity clears it and starts another). Armed, it fired again at once:
      // a "changed" published, its detail rewritten (deferredByQuietHours said of the restart).
      if (this.engine.find(h.id, "WELFARE_CHECK")?.conditionActive) continue;
      if (h.welfareEnabled && h.devices.length > 0 && !this.isAway(h.id))
        this.wheel.arm(h.welfareTimer, (from > 0 ? from : now) + h.welfarePeriodMs);
    }
    this.engine.announceFlood();
  }

  /** Away mode read back from the journal (before start()); an `until` already past ends at once. */
  restoreAway(household: HouseholdEntry, rec: AwayRecord): void {
    const c = this.careFor(household);
    c.away = true;
    c.awayBy = rec.by;
    c.awayAccount = rec.account ?? null;
    c.awaySince = rec.since;
    c.awayUntil = rec.until;
    if (rec.until !== null) {
      c.awayTimer ??= new WheelTimer(this.awayEnded, c);
      this.wheel.arm(c.awayTimer, rec.until);
    }
  }

  /**
   * The wall clock stepped by `stepMs` while running (the wheel's timers, on elapsed time, already
   * moved): each away mode's end and since move with it, journaled and republished; each device's
   * last-seen time and household's last activity move (the caller journals them; a DEVICE_LOST says
   * how long the device was silent from it); a welfare check waiting for the end
   * of quiet hours waits for their end on the new clock (a time of day, not an elapsed time).
   */
  shiftTimes(stepMs: number, registry: Registry): void {
    const now = this.clock.now();
    for (const d of registry.devices.values()) moveLive("device", d, stepMs);
    for (const h of registry.households.values()) moveLive("household", h, stepMs);
    for (const c of this.care.values()) {
      if (c.deferred && c.quiet && c.household.welfareTimer.armed)
        this.wheel.arm(c.household.welfareTimer, this.local.quietHoursEnd(now, c.quiet));
      if (!c.away) continue;
      // `since` too: activity within the exit grace after it is the resident leaving.
      moveLive("away", c, stepMs);
      this.recordAway(c.household.id, {
        by: c.awayBy,
        account: c.awayAccount,
        since: c.awaySince,
        until: c.awayUntil,
      });
      this.publisher.householdMonitoring(c.household.id, this.status(c, c.awayBy, null, c.awayAccount));
    }
  }

  /** Every household's monitoring status, for republishing retained state after a restart. */
  awayStatuses(): MonitoringStatus[] {
    const out: MonitoringStatus[] = [];
    for (const c of this.care.values()) if (c.away) out.push(this.status(c, c.awayBy, null, c.awayAccount));
    return out;
  }

  // --- live reconfiguration (gateway/reload.ts) ------------------------------------

  /** A device added by a reload: silence counts from now (polled devices: their polls decide). */
  track(device: DeviceEntry): void {
    this.armLost(device, this.clock.now());
  }

  untrack(device: DeviceEntry): void {
    if (device.lostTimer) this.wheel.disarm(device.lostTimer);
  }

  /**
   * The device's heartbeat interval or the lost grace changed: its pending
   * lost deadline moves by the difference (it still counts from the last message).
   */
  retime(device: DeviceEntry, oldLostAfterMs: number): void {
    const t = device.lostTimer;
    if (t === null || !t.armed) return;
    this.wheel.arm(t, t.deadline - oldLostAfterMs + device.lostAfterMs(this.lostGraceMs));
  }

  get lostGrace(): number {
    return this.lostGraceMs;
  }

  setOptions(opts: { lostGraceMs: number; awayExitGraceMs: number }): void {
    this.lostGraceMs = opts.lostGraceMs;
    this.awayExitGraceMs = opts.awayExitGraceMs;
  }

  /**
   * A household added or changed by a reload (welfare on/off, period, quiet
   * hours, devices moved in or out). A running welfare period moves by the
   * change of its length; one that already fell due stays raised.
   */
  householdChanged(h: HouseholdEntry, oldPeriodMs: number, quietHours: string | undefined): void {
    const c = quietHours !== undefined || this.care.has(h.id) ? this.careFor(h) : undefined;
    if (c) c.quiet = quietHours !== undefined ? parseQuietHours(quietHours) : null;
    const t = h.welfareTimer;
    if (!h.welfareEnabled || h.devices.length === 0) {
      this.wheel.disarm(t);
      return;
    }
    if (c?.away) return;
    if (c?.deferred) {
      // Due, and waiting for the end of quiet hours: of the new ones (none, or not now: raised now).
      // Kept at the old end, a check due now waited for quiet hours the site no longer has.
      const now = this.clock.now();
      const inQuiet = c.quiet !== null && this.local.inQuietHours(now, c.quiet);
      this.wheel.arm(t, inQuiet ? this.local.quietHoursEnd(now, c.quiet as QuietHours) : now);
      return;
    }
    if (t.armed) this.wheel.arm(t, t.deadline - oldPeriodMs + h.welfarePeriodMs);
    else if (!this.engine.find(h.id, "WELFARE_CHECK")) {
      // The period starts now, journaled: a restart counting from older activity raised the check
      // that long early (at once, for a household whose earlier devices were last heard long ago).
      h.welfareFrom = this.clock.now();
      this.recordHousehold(h);
      this.wheel.arm(t, h.welfareFrom + h.welfarePeriodMs);
    }
  }

  /**
   * A household removed by a reload: its timers stop, its retained monitoring status goes, and so
   * does its journaled away mode (kept, a household added again under the id, new residents, was
   * away again after the next restart: no welfare checks for them).
   */
  householdRemoved(h: HouseholdEntry): void {
    this.wheel.disarm(h.welfareTimer);
    const c = this.care.get(h.id);
    if (c?.awayTimer) this.wheel.disarm(c.awayTimer);
    if (c?.away) this.recordAway(h.id, null);
    this.care.delete(h.id);
    this.publisher.householdRemoved(h.id);
  }

  /** Any accepted message: the device is alive. */
  seen(device: DeviceEntry, at: number): void {
    device.lastSeen = at;
    this.armLost(device, at);
    if (device.link !== "online") {
      const wasLost = device.link === "lost";
      device.link = "online";
      this.publisher.deviceStatus(device, "online");
      if (wasLost)
        this.engine
          .contextFor(device)
          .condition("DEVICE_LOST", false, { priority: device.profile.lostPriority });
    }
  }

  /** Resident activity in a household: the welfare period starts again, an open WELFARE_CHECK clears. */
  activity(household: HouseholdEntry, at: number): void {
    // A check that fell due before this activity and has not fired yet (the wheel is held from a
    // start's recovery until the restored state is republished, and fires up to a tick late) is
    // raised first, as on time: nobody saw the resident for the whole period (the time the gateway
    // was down included), which the operator must still learn; this activity then clears it.
    const due = household.welfareTimer;
    if (due.armed && due.deadline <= at) {
      this.wheel.disarm(due);
      this.onWelfareDue(due);
    }
    household.lastActivity = at;
    // "Cleared when: the next activity", whatever else holds: before, activity from a household
    // whose welfare checks a reload had switched off, or a resident leaving within the away exit
    // grace, left an open WELFARE_CHECK to escalate, or stay acknowledged, for good.
    this.engine.contextFor(household).condition("WELFARE_CHECK", false, INACTIVE[2]);
    const c = this.care.get(household.id);
    if (c?.away) {
      // Opening the door on the way out is not coming back.
      if (at - c.awaySince < this.awayExitGraceMs) return;
      this.endAway(c, "activity", "resident activity");
    }
    if (!household.welfareEnabled) return;
    if (c) c.deferred = false;
    this.wheel.arm(household.welfareTimer, at + household.welfarePeriodMs);
  }

  /**
   * The only place a silence timer is armed: heartbeat devices are lost 2
   * heartbeats + grace after `from`; polled devices have no timer (missed polls decide).
   */
  private armLost(device: DeviceEntry, from: number): void {
    if (device.lostTimer) this.wheel.arm(device.lostTimer, from + device.lostAfterMs(this.lostGraceMs));
  }

  readonly onLost = (timer: WheelTimer): void => {
    this.markLost(timer.owner as DeviceEntry, "no heartbeat");
  };

  /** Heartbeat silence, or (polled devices) the profile's limit of missed polls in a row. */
  markLost(device: DeviceEntry, cause: string): void {
    if (device.link === "lost") return;
    device.link = "lost";
    this.publisher.deviceStatus(device, "lost");
    // ISA-18.2 out of service: the operator knows the device is away; no DEVICE_LOST.
    if (this.engine.isOutOfService(device.id)) return;
    this.raiseLost(device, cause);
  }

  /**
   * An operator took a device out of service or put it back (the engine holds
   * its alerts). Back in service re-evaluates: a device still silent is lost now.
   */
  serviceChanged(device: DeviceEntry, inService: boolean): void {
    if (inService && device.link === "lost") this.raiseLost(device, "still silent when back in service");
  }

  private raiseLost(device: DeviceEntry, cause: string): void {
    this.engine.contextFor(device).condition("DEVICE_LOST", true, {
      priority: device.profile.lostPriority,
      causes: [cause],
      detail: {
        lastSeen: device.lastSeen,
        silentForMs: this.clock.now() - (device.lastSeen || this.clock.now()),
      },
    });
  }

  /** Fires once per silent period: the timer is re-armed only by activity (or the end of quiet hours). */
  readonly onWelfareDue = (timer: WheelTimer): void => {
    const household = timer.owner as HouseholdEntry;
    const c = this.care.get(household.id);
    if (c?.away) return; // paused; re-armed when the resident is back
    const now = this.clock.now();
    if (c?.quiet && this.local.inQuietHours(now, c.quiet)) {
      c.deferred = true;
      this.wheel.arm(household.welfareTimer, this.local.quietHoursEnd(now, c.quiet));
      return;
    }
    const deferred = c?.deferred ?? false;
    if (c) c.deferred = false;
    this.engine.contextFor(household).condition("WELFARE_CHECK", true, {
      priority: 2,
      causes: ["no activity"],
      detail: {
        lastActivity: household.lastActivity,
        periodMs: household.welfarePeriodMs,
        deferredByQuietHours: deferred,
      },
    });
  };

  // --- away mode ----------------------------------------------------------------

  /** The resident is away (until `until`, or until back) or back; returns the new status. */
  setAway(
    household: HouseholdEntry,
    away: boolean,
    by: string,
    until: number | null,
    reason: string | null,
    account: string | null = null,
  ): MonitoringStatus {
    const c = this.careFor(household);
    const now = this.clock.now();
    if (!away) {
      if (c.away) return this.endAway(c, by, reason, account);
      return this.status(c, by, reason, account);
    }
    c.away = true;
    c.awayBy = by;
    c.awayAccount = account;
    c.awaySince = now;
    c.awayUntil = until;
    c.deferred = false;
    this.wheel.disarm(household.welfareTimer);
    if (until !== null) {
      c.awayTimer ??= new WheelTimer(this.awayEnded, c);
      this.wheel.arm(c.awayTimer, until);
    } else if (c.awayTimer) this.wheel.disarm(c.awayTimer);
    const status = this.status(c, by, reason, account);
    this.recordAway(household.id, { by, account, since: now, until });
    this.publisher.householdMonitoring(household.id, status);
    return status;
  }

  isAway(householdId: string): boolean {
    return this.care.get(householdId)?.away === true;
  }

  private readonly awayEnded = (timer: WheelTimer): void => {
    this.endAway(timer.owner as HouseholdCare, "gateway", "away period ended");
  };

  /** Back home: monitoring resumes with a fresh welfare period from now. */
  private endAway(
    c: HouseholdCare,
    by: string,
    reason: string | null,
    account: string | null = null,
  ): MonitoringStatus {
    const h = c.household;
    c.away = false;
    c.awayUntil = null;
    c.awaySince = this.clock.now();
    c.awayBy = by;
    c.awayAccount = account;
    if (c.awayTimer) this.wheel.disarm(c.awayTimer);
    // The period starts now, journaled with the end of away mode: a restart counting from the
    // activity before it raised a WELFARE_CHECK at once for everyone back from a long absence.
    h.welfareFrom = c.awaySince;
    if (h.welfareEnabled && h.devices.length > 0)
      this.wheel.arm(h.welfareTimer, h.welfareFrom + h.welfarePeriodMs);
    const status = this.status(c, by, reason, account);
    this.recordHousehold(h);
    this.recordAway(h.id, null);
    this.publisher.householdMonitoring(h.id, status);
    return status;
  }

  private status(
    c: HouseholdCare,
    by: string,
    reason: string | null,
    account: string | null,
  ): MonitoringStatus {
    return {
      household: c.household.id,
      state: c.away ? "away" : "monitored",
      by,
      account,
      since: c.awaySince,
      until: c.awayUntil,
      reason,
    };
  }

  private careFor(h: HouseholdEntry): HouseholdCare {
    let c = this.care.get(h.id);
    if (!c) {
      c = new HouseholdCare(h);
      this.care.set(h.id, c);
    }
    return c;
  }
}
