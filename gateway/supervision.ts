/**
 * Supervision of silence: a device that stops talking (DEVICE_LOST) and a
 * household where nobody has done anything for the welfare period
 * (WELFARE_CHECK). One wheel timer per device and per household, re-armed by
 * traffic, so 20,000 devices cost 20,000 list nodes, not 20,000 Node timers.
 */
import type { AlertEngine } from "./alerts/engine.js";
import type { Publisher } from "./northbound/publisher.js";
import type { DeviceEntry, HouseholdEntry, Registry } from "./registry.js";
import type { Clock } from "./time/clock.js";
import type { TimerWheel, WheelTimer } from "./time/timer-wheel.js";

export class Supervisor {
  constructor(
    private readonly clock: Clock,
    private readonly wheel: TimerWheel,
    private readonly engine: AlertEngine,
    private readonly publisher: Publisher,
    private readonly lostGraceMs: number,
  ) {}

  /** Arms every device's lost timer and every household's welfare timer from now. */
  start(registry: Registry): void {
    const now = this.clock.now();
    for (const d of registry.devices.values())
      this.wheel.arm(d.lostTimer, now + d.lostAfterMs(this.lostGraceMs));
    for (const h of registry.households.values()) {
      if (h.welfareEnabled && h.devices.length > 0) this.wheel.arm(h.welfareTimer, now + h.welfarePeriodMs);
    }
  }

  /** Any accepted message: the device is alive. */
  seen(device: DeviceEntry, at: number): void {
    device.lastSeen = at;
    this.wheel.arm(device.lostTimer, at + device.lostAfterMs(this.lostGraceMs));
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
    household.lastActivity = at;
    if (!household.welfareEnabled) return;
    this.wheel.arm(household.welfareTimer, at + household.welfarePeriodMs);
    this.engine.contextFor(household).condition("WELFARE_CHECK", false, { priority: 2 });
  }

  readonly onLost = (timer: WheelTimer): void => {
    const device = timer.owner as DeviceEntry;
    device.link = "lost";
    this.publisher.deviceStatus(device, "lost");
    this.engine.contextFor(device).condition("DEVICE_LOST", true, {
      priority: device.profile.lostPriority,
      causes: ["no heartbeat"],
      detail: {
        lastSeen: device.lastSeen,
        silentForMs: this.clock.now() - (device.lastSeen || this.clock.now()),
      },
    });
  };

  /** Fires once per silent period: the timer is re-armed only by activity. */
  readonly onWelfareDue = (timer: WheelTimer): void => {
    const household = timer.owner as HouseholdEntry;
    this.engine.contextFor(household).condition("WELFARE_CHECK", true, {
      priority: 2,
      causes: ["no activity"],
      detail: { lastActivity: household.lastActivity, periodMs: household.welfarePeriodMs },
    });
  };
}
