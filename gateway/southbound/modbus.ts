/**
 * Modbus southbound: one bus per RS-485 line and per kiosk (TCP endpoint),
 * one poller per bus, and the glue from poll results to the pipeline.
 *
 *   poller ──result──► decode (profile points) ──► profile.decode ──► lane ──► pipeline
 *   operator command ──► profile.commands ──► bus (command lane, ahead of polls) ──► result
 *
 * The bus owns its link and runs one transaction at a time (protocols/modbus).
 * A device is lost after the profile's number of failed polls in a row (3 per
 * the datasheets); its next good poll brings it back (consume -> supervisor.seen).
 */

import { pointRanges } from "../../devices/modbus-decode.js";
import { decodePollSample } from "../../devices/modbus-sample.js";
import type { ModbusDeviceProfile } from "../../devices/profile.js";
import { isRejection, LANE_TELEMETRY, type LaneId } from "../../devices/profile.js";
import {
  bitsPerChar,
  type Link,
  SerialLink,
  type SerialSettings,
  TcpLink,
} from "../../protocols/links/index.js";
import {
  type BusStats,
  LineBudgetError,
  ModbusBus,
  type ModbusFailure,
  ModbusPoller,
  type ModbusRequest,
  type PollerStats,
  type PollResult,
} from "../../protocols/modbus/index.js";
import type { BusConfig, Config } from "../config/schema.js";
import type { Logger, RateLimitedLog } from "../log.js";
import type { PriorityPipeline } from "../pipeline/lanes.js";
import type { DeviceEntry, Registry } from "../registry.js";
import type { Counters } from "../stats.js";
import type { Supervisor } from "../supervision.js";
import type { Clock } from "../time/clock.js";

export type CommandOutcome =
  | { ok: true }
  | { ok: false; error: "unknown-command"; known: string[] }
  | { ok: false; error: "exception"; exception: string; code: number }
  | { ok: false; error: ModbusFailure["kind"] };

export interface BusReport {
  bus: BusStats;
  poller: PollerStats;
  devices: string[];
}

/** How a link is made for a bus; tests and the demo replace it to use in-memory lines or ptys. */
export type LinkFactory = (
  spec:
    | { kind: "serial"; settings: SerialSettings & { path: string } }
    | { kind: "tcp"; host: string; port: number },
) => Link;

export const defaultModbusLinks: LinkFactory = (spec) =>
  spec.kind === "serial" ? new SerialLink(spec.settings) : new TcpLink({ host: spec.host, port: spec.port });

interface BusUnit {
  bus: ModbusBus;
  poller: ModbusPoller;
  devices: DeviceEntry[];
}

export class StartupError extends Error {}

export class ModbusSouthbound {
  private readonly buses = new Map<string, BusUnit>();
  /** Polled samples refused by a full alert lane: one per device, the newest wins (polled state is current state). */
  private readonly held = new Map<DeviceEntry, { lane: LaneId; sample: unknown; at: number }>();

  constructor(
    private readonly config: Config,
    private readonly registry: Registry,
    private readonly pipeline: PriorityPipeline,
    private readonly supervisor: Supervisor,
    private readonly counters: Counters,
    private readonly log: Logger,
    private readonly rateLog: RateLimitedLog,
    private readonly clock: Clock,
    private readonly makeLink: LinkFactory = defaultModbusLinks,
  ) {
    pipeline.onSpace(this.releaseHeld);
  }

  get deviceCount(): number {
    let n = 0;
    for (const u of this.buses.values()) n += u.devices.length;
    return n;
  }

  /**
   * Builds every bus and poller and starts polling. A serial poll plan that
   * needs more than the line can carry is refused (naming the bus, the demand
   * and the capacity) unless the bus accepts degradation.
   */
  async start(): Promise<void> {
    const serial = new Map<string, BusConfig>(this.config.buses.map((b) => [b.id, b]));
    for (const device of this.registry.devices.values()) {
      const c = device.config;
      if (c.model === "mfs8") {
        const b = serial.get(c.bus) as BusConfig;
        this.unitFor(b.id, () => this.serialBus(b)).devices.push(device);
      } else if (c.model === "gk3") {
        const id = `tcp:${c.host}:${c.port}`;
        this.unitFor(id, () => this.tcpBus(id, c.host, c.port, c.timeout)).devices.push(device);
      }
    }
    const phases = spreadPhases([...this.buses.values()].flatMap((u) => u.devices));
    for (const unit of this.buses.values()) {
      for (const device of unit.devices) {
        const profile = device.profile as ModbusDeviceProfile;
        const c = device.config as { unit: number };
        unit.poller.add({
          id: device.id,
          unit: c.unit,
          fn: profile.fn,
          periodMs: device.settings.pollIntervalMs,
          phaseMs: phases.get(device),
          ranges: pointRanges(profile.points),
          maxGap: profile.maxGap,
        });
      }
      try {
        unit.poller.start();
      } catch (err) {
        await this.stop();
        if (err instanceof LineBudgetError) throw new StartupError(err.message);
        throw err;
      }
    }
    // Links open in the background: a kiosk that is away must not hold up the others (bus backoff).
    for (const [name, unit] of this.buses) {
      unit.bus.start().catch((err) => this.log.warn({ bus: name, err }, "bus failed to start"));
    }
    if (this.buses.size > 0)
      this.log.info({ buses: this.buses.size, devices: this.deviceCount }, "modbus polling started");
  }

  async stop(): Promise<void> {
    for (const unit of this.buses.values()) unit.poller.stop();
    await Promise.all([...this.buses.values()].map((u) => u.bus.close()));
    this.buses.clear();
    this.held.clear();
  }

  stats(): BusReport[] {
    return [...this.buses.values()].map((u) => ({
      bus: u.bus.stats(),
      poller: u.poller.stats(),
      devices: u.devices.map((d) => d.id),
    }));
  }

  /** Starts every poller's statistics afresh (benchmarks leave out their warm-up). */
  resetStats(): void {
    for (const u of this.buses.values()) u.poller.resetStats();
  }

  /** Poll lateness samples of every bus together, ms (for a true percentile across buses). */
  latenessSamples(): number[] {
    const out: number[] = [];
    for (const u of this.buses.values()) for (const v of u.poller.latenessSamples()) out.push(v);
    return out;
  }

  /** Runs an operator command on the device's bus, ahead of routine polls. */
  async command(device: DeviceEntry, name: string): Promise<CommandOutcome> {
    const profile = device.profile as ModbusDeviceProfile;
    const cmd = profile.commands[name];
    if (!cmd) return { ok: false, error: "unknown-command", known: Object.keys(profile.commands) };
    const unit = [...this.buses.values()].find((u) => u.devices.includes(device));
    if (!unit) return { ok: false, error: "closed" };
    const c = device.config as { unit: number };
    const request: ModbusRequest =
      cmd.fn === 5
        ? { fn: 5, unit: c.unit, address: cmd.address, value: cmd.value !== 0 }
        : { fn: 6, unit: c.unit, address: cmd.address, value: cmd.value };
    const result = await unit.bus.request(request, { priority: "command" });
    if (result.ok) return { ok: true };
    const f = result.failure;
    if (f.kind === "exception") return { ok: false, error: "exception", exception: f.name, code: f.code };
    return { ok: false, error: f.kind };
  }

  private unitFor(id: string, make: () => BusUnit): BusUnit {
    let unit = this.buses.get(id);
    if (!unit) {
      unit = make();
      this.buses.set(id, unit);
    }
    return unit;
  }

  private serialBus(b: BusConfig): BusUnit {
    const settings = {
      path: b.path,
      baudRate: b.baudRate,
      parity: b.parity,
      stopBits: b.stopBits,
      dataBits: 8 as const,
    };
    const bus = new ModbusBus({
      name: b.id,
      link: this.makeLink({ kind: "serial", settings }),
      mode: "rtu",
      clock: this.clock,
      baudRate: b.baudRate,
      bitsPerChar: bitsPerChar(settings),
      timeoutMs: b.timeout,
      retries: b.retries,
    });
    const poller = new ModbusPoller({
      bus,
      clock: this.clock,
      onResult: this.onResult,
      line: { settings, turnaroundMs: b.turnaround, acceptDegradation: b.acceptDegradation },
    });
    return { bus, poller, devices: [] };
  }

  private tcpBus(name: string, host: string, port: number, timeoutMs: number | undefined): BusUnit {
    const bus = new ModbusBus({
      name,
      link: this.makeLink({ kind: "tcp", host, port }),
      mode: "tcp",
      clock: this.clock,
      timeoutMs: timeoutMs ?? 1000,
    });
    return {
      bus,
      poller: new ModbusPoller({ bus, clock: this.clock, onResult: this.onResult }),
      devices: [],
    };
  }

  private readonly onResult = (result: PollResult): void => {
    const device = this.registry.devices.get(result.device);
    if (!device) return;
    const profile = device.profile as ModbusDeviceProfile;
    if (!result.ok) {
      device.missedPolls++;
      this.counters.reject(device.model, `poll-${result.failure.kind}`);
      if (device.missedPolls === profile.missedPollsForLost) {
        this.supervisor.markLost(device, `${device.missedPolls} polls missed (${result.failure.kind})`);
      }
      return;
    }
    device.missedPolls = 0;
    this.counters.message(device.model);
    let sample: unknown;
    try {
      sample = decodePollSample(profile, result.blocks);
    } catch (err) {
      // Not expected (fuzz/registers.ts): one bad reply must not stop the poller.
      sample = { rejected: true, reason: "bad-field", detail: (err as Error).message };
    }
    if (isRejection(sample)) {
      this.counters.reject(device.model, sample.reason);
      this.rateLog.warn(
        device.id,
        sample.reason,
        { deviceId: device.id, detail: sample.detail },
        "poll reply refused",
      );
      return;
    }
    const lane = profile.lane(sample, device.lastPolled);
    device.lastPolled = sample;
    this.offer(device, lane, sample, result.at);
  };

  private offer(device: DeviceEntry, lane: LaneId, sample: unknown, at: number): void {
    if (this.held.has(device) && lane !== LANE_TELEMETRY) {
      // Keep order: the held sample goes first; this newer state replaces it (it includes the latched bits).
      this.held.set(device, {
        lane: Math.min(lane, this.held.get(device)?.lane ?? lane) as LaneId,
        sample,
        at,
      });
      return;
    }
    const outcome = this.pipeline.offer(lane, device, sample, at, this.clock.monotonic(), null);
    if (outcome === "full") this.held.set(device, { lane, sample, at });
  }

  private readonly releaseHeld = (): void => {
    for (const [device, h] of this.held) {
      if (this.pipeline.offer(h.lane, device, h.sample, h.at, this.clock.monotonic(), null) === "full")
        return;
      this.held.delete(device);
    }
  };
}

/**
 * Phase offsets across every bus: devices with the same poll period are
 * spread evenly over it. Each kiosk has a bus (and poller) of its own, so a
 * per-poller spread would start all 500 kiosks' polls in the same
 * millisecond every second (ThingsBoard gateway #799); measured here, that
 * burst alone put the p99 poll lateness at 44 ms.
 */
function spreadPhases(devices: readonly DeviceEntry[]): Map<DeviceEntry, number> {
  const byPeriod = new Map<number, DeviceEntry[]>();
  for (const d of devices) {
    const period = d.settings.pollIntervalMs;
    let group = byPeriod.get(period);
    if (!group) byPeriod.set(period, (group = []));
    group.push(d);
  }
  const phases = new Map<DeviceEntry, number>();
  for (const [period, group] of byPeriod) {
    for (const [i, d] of group.entries()) phases.set(d, (i * period) / group.length);
  }
  return phases;
}
