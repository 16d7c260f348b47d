/**
 * Every device of a site, attached over the real protocols: one MQTT
 * connection per EC-200 / DS-10 / GD-2 (the datasheets' client ids and
 * credentials), MFS-8 panels and LV-4 sensors as Modbus RTU slaves on a
 * serial line (a USB adapter or one end of a socat pty), GK-3 kiosks as
 * Modbus TCP servers on the address the site's configuration gives them.
 *
 * Connections are opened at most `connectConcurrency` at a time: 10,000
 * CONNECTs at once fill the gateway's accept backlog and time out on a small
 * box, while a bounded window keeps every handshake short.
 */
import { SerialLink } from "../protocols/index.js";
import { Gk3Controller } from "./modbus/gk3.js";
import { Lv4Sensor } from "./modbus/lv4.js";
import { Mfs8Panel } from "./modbus/mfs8.js";
import { RtuSlaveServer } from "./modbus/rtu-server.js";
import type { SimSlave } from "./modbus/slave.js";
import { ModbusTcpSlaveServer } from "./modbus/tcp-server.js";
import { Ds10 } from "./mqtt/ds10.js";
import { Ec200 } from "./mqtt/ec200.js";
import { Gd2 } from "./mqtt/gd2.js";
import type { DeviceLink, DeviceTlsOptions } from "./mqtt/link.js";
import { deriveSeed, randomInt, seededRandom } from "./mqtt/random.js";
import type { MqttDeviceSpec, SiteModel } from "./site.js";

export type MqttDevice = Ec200 | Ds10 | Gd2;

export interface FleetOptions {
  site: SiteModel;
  brokerUrl: string;
  tls?: DeviceTlsOptions;
  seed: number;
  /** The simulator's end of each RTU bus, by bus id (`--bus rs485-1=/dev/ttyUSB1`). */
  busPaths?: Record<string, string>;
  /** Connections opened at once, default 200. */
  connectConcurrency?: number;
  /**
   * Added to every device's first seq. The gateway remembers each device's
   * recent seqs across runs, so a second run with the same seed must not start
   * from the same numbers (its messages would be dropped as re-sends): the
   * default is the time in 10 ms units, the one quantity not from the seed.
   */
  seqBase?: number;
  /** Heartbeats on (datasheet periods from the site). Default true. */
  heartbeats?: boolean;
}

export interface AttachResult {
  connected: number;
  /** Devices whose first connection failed: stopped (no retries) and no longer in the fleet. */
  failed: Array<{ id: string; error: string }>;
  rtuSlaves: number;
  kiosks: number;
  /** Devices of the site the simulator could not attach, and why (e.g. a bus without a path). */
  skipped: Array<{ id: string; reason: string }>;
  /**
   * Kiosks that could not listen on their port (taken, not allowed): failed like an MQTT device
   * that could not connect, since the gateway polls one that is not there.
   */
  kiosksFailed: Array<{ id: string; error: string }>;
  /** MQTT devices never tried: a stop (Ctrl-C, SIGTERM) came while attaching. */
  notAttempted: number;
}

/**
 * Malformed requests the site's simulated devices received from the gateway, summed over the
 * site: what a gateway under test sent wrong, as the devices' own servers counted it. Each
 * device side counts what its protocol lets it tell apart; none of it is answered.
 */
export interface MalformedInput {
  /** GK-3 kiosks (Modbus TCP servers, tcp-server.ts stats). */
  modbusTcp: {
    /** Request frames with a protocol id other than 0 (MODBUS): discarded. */
    foreignProtocol: number;
    /** Request headers whose length frames nothing: the bytes held were dropped. */
    framingErrors: number;
  };
  /** RTU buses (rtu-server.ts stats): request frames with a bad CRC, and requests cut off, discarded. */
  modbusRtu: { crcErrors: number; incompleteFrames: number };
  /** EC-200 / GD-2 downlinks that are no command of the datasheet (not JSON or CBOR, unknown cmd, no id). */
  mqtt: { badDownlinks: number };
}

export class Fleet {
  readonly mqtt = new Map<string, MqttDevice>();
  readonly specs = new Map<string, MqttDeviceSpec>();
  readonly panels = new Map<string, Mfs8Panel>();
  readonly tanks = new Map<string, Lv4Sensor>();
  readonly kiosks = new Map<string, Gk3Controller>();
  /** Slaves per bus id, for "bus goes silent". */
  readonly busSlaves = new Map<string, SimSlave[]>();
  private readonly stops: Array<() => Promise<void>> = [];
  /** The Modbus servers, for their counters (kept after stop(): the run's summary reads them last). */
  private readonly tcpServers: ModbusTcpSlaveServer[] = [];
  private readonly rtuServers: RtuSlaveServer[] = [];
  private badDownlinks = 0;
  /**
   * Connections that were up and went down from the other end (the gateway closed them, or the
   * network): not the simulator's own churn or stop. Their devices reconnect; meanwhile load due on
   * them is skipped, which the report would otherwise leave unexplained.
   */
  closedByGateway = 0;

  constructor(private readonly opts: FleetOptions) {
    const { site, seed } = opts;
    const seqBase = opts.seqBase ?? Math.floor(Date.now() / 10);
    for (const d of site.mqtt) {
      const random = seededRandom(deriveSeed(seed, `device:${d.id}`));
      const common = {
        deviceId: d.id,
        brokerUrl: opts.brokerUrl,
        tls: opts.tls,
        password: d.password,
        encoding: d.model === "gd2" ? ("json" as const) : d.encoding,
        clockSkewMs: d.clockSkewMs,
        initialSeq: (seqBase + randomInt(random, 1, 50_000)) % 0xffff_ffff,
        battery: randomInt(random, 40, 100),
        heartbeatIntervalMs: opts.heartbeats === false ? 0 : d.heartbeatIntervalS * 1000,
        // Phase offsets so the fleet's heartbeats do not fire in step.
        heartbeatPhaseMs: Math.round(random() * d.heartbeatIntervalS * 1000) + 1,
        random,
      };
      const dev =
        d.model === "ec200" ? new Ec200(common) : d.model === "ds10" ? new Ds10(common) : new Gd2(common);
      dev.on("bad-downlink", () => {
        this.badDownlinks++;
      });
      let up = false;
      dev.on("online", () => {
        up = true;
      });
      dev.on("offline", ({ forced }) => {
        if (up && !forced) this.closedByGateway++;
        up = false;
      });
      this.mqtt.set(d.id, dev);
      this.specs.set(d.id, d);
    }
  }

  /** Devices of one model, in site order. */
  ofModel<M extends MqttDevice>(model: "ec200" | "ds10" | "gd2"): Array<{ spec: MqttDeviceSpec; device: M }> {
    const out: Array<{ spec: MqttDeviceSpec; device: M }> = [];
    for (const [id, spec] of this.specs)
      if (spec.model === model) out.push({ spec, device: this.mqtt.get(id) as M });
    return out;
  }

  /**
   * `stopRequested`: checked before each device, so a stop while thousands attach (tens of seconds)
   * waits only for the connections under way, not for every device of the site.
   */
  async attach(
    onProgress?: (connected: number, total: number, failed: number) => void,
    stopRequested: () => boolean = () => false,
  ): Promise<AttachResult> {
    const result: AttachResult = {
      connected: 0,
      failed: [],
      rtuSlaves: 0,
      kiosks: 0,
      skipped: [],
      kiosksFailed: [],
      notAttempted: 0,
    };
    await this.attachModbus(result);
    const devices = [...this.mqtt.values()];
    const window = this.opts.connectConcurrency ?? 200;
    let next = 0;
    const worker = async () => {
      while (next < devices.length && !stopRequested()) {
        const d = devices[next++] as DeviceLink;
        try {
          await d.start();
          result.connected++;
        } catch (err) {
          result.failed.push({ id: d.deviceId, error: err instanceof Error ? err.message : String(err) });
          // Reported as failed, so it must not connect behind the report's back (mqtt.js would
          // keep retrying: at thousands, a storm of logins on a rate-limited gateway). The
          // scenario never picks it: it is not part of the fleet.
          this.mqtt.delete(d.deviceId);
          this.specs.delete(d.deviceId);
          await d.stop();
        }
        onProgress?.(result.connected, devices.length, result.failed.length);
      }
    };
    await Promise.all(Array.from({ length: Math.min(window, devices.length) }, worker));
    result.notAttempted = devices.length - next;
    return result;
  }

  private async attachModbus(result: AttachResult): Promise<void> {
    const { site } = this.opts;
    for (const bus of site.buses) {
      const onBus = site.rtu.filter((d) => d.bus === bus.id);
      if (onBus.length === 0) continue;
      const path = this.opts.busPaths?.[bus.id];
      if (!path) {
        for (const d of onBus)
          result.skipped.push({
            id: d.id,
            reason: `bus ${bus.id}: give the simulator's end with --bus ${bus.id}=PATH`,
          });
        continue;
      }
      const link = new SerialLink({
        path,
        baudRate: bus.baudRate,
        parity: bus.parity,
        stopBits: bus.stopBits,
      });
      // Wire time at the bus speed, as on the real line.
      const server = new RtuSlaveServer(link, { pace: { baudRate: bus.baudRate }, turnaroundMs: 5 });
      const slaves: SimSlave[] = [];
      for (const d of onBus) {
        const slave = d.model === "mfs8" ? new Mfs8Panel({ unit: d.unit }) : new Lv4Sensor({ unit: d.unit });
        if (slave instanceof Mfs8Panel) this.panels.set(d.id, slave);
        else {
          this.tanks.set(d.id, slave);
          this.stops.push(async () => slave.dispose());
        }
        server.add(slave);
        slaves.push(slave);
      }
      await server.start();
      this.stops.push(() => server.stop());
      this.rtuServers.push(server);
      this.busSlaves.set(bus.id, slaves);
      result.rtuSlaves += slaves.length;
    }
    for (const d of site.tcp) {
      if (!["127.0.0.1", "localhost", "::1", "0.0.0.0"].includes(d.host)) {
        result.skipped.push({ id: d.id, reason: `kiosk address ${d.host} is not this machine` });
        continue;
      }
      const kiosk = new Gk3Controller({ unit: d.unit });
      const server = new ModbusTcpSlaveServer(kiosk, {
        host: d.host === "localhost" ? "127.0.0.1" : d.host,
        port: d.port,
      });
      try {
        await server.start();
      } catch (err) {
        kiosk.dispose();
        result.kiosksFailed.push({ id: d.id, error: `cannot listen on ${d.host}:${d.port}: ${String(err)}` });
        continue;
      }
      this.kiosks.set(d.id, kiosk);
      this.tcpServers.push(server);
      this.stops.push(async () => {
        kiosk.dispose();
        await server.stop();
      });
      result.kiosks++;
    }
  }

  /** What the devices' servers counted of malformed requests so far (also after stop()). */
  malformedInput(): MalformedInput {
    const m: MalformedInput = {
      modbusTcp: { foreignProtocol: 0, framingErrors: 0 },
      modbusRtu: { crcErrors: 0, incompleteFrames: 0 },
      mqtt: { badDownlinks: this.badDownlinks },
    };
    for (const s of this.tcpServers) {
      m.modbusTcp.foreignProtocol += s.stats.foreignProtocol;
      m.modbusTcp.framingErrors += s.stats.framingErrors;
    }
    for (const s of this.rtuServers) {
      m.modbusRtu.crcErrors += s.stats.crcErrors;
      m.modbusRtu.incompleteFrames += s.stats.incompleteFrames;
    }
    return m;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.mqtt.values()].map((d) => d.stop()));
    for (const s of this.stops.reverse()) await s();
    this.stops.length = 0;
  }
}
