/**
 * What the device front end's worker (worker.ts) and the main thread (device-front.ts) say to
 * each other. Messages go two ways:
 *
 * - Per message, over SharedArrayBuffer rings (core/spsc-ring.ts), no postMessage:
 *   the worker writes an UPLINK record for every PUBLISH on a device's own uplink topic (and
 *   its will when it falls due): into the telemetry ring when the model's `telemetryWhen` says
 *   it is certainly telemetry, else into the alert ring, which the main thread drains first; the
 *   main thread writes a COMPLETION record when the gateway has committed (or refused) a QoS 1
 *   uplink, and the worker writes the PUBACKs in order.
 * - Per connection, by postMessage (rare: a login, a subscription, a close): the messages below.
 *
 * Uplink record (tag UPLINK or WILL, either ring):
 *   u32 connection id | i32 PUBACK slot (-1: QoS 0, nothing to acknowledge) | u8 retain |
 *   u8 content-type length | content type (latin1, MQTT 5 only) | payload
 * Close record (tag CLOSED, alert ring, after the connection's last record in it, its will
 * included, so nothing read before a close is dropped):
 *   u32 connection id | i32 1 when the connection's CONNECT was posted to the main thread, else 0 |
 *   u32 the telemetry ring's write position after the connection's last telemetry record (the
 *   main thread closes the connection once it has read the telemetry ring that far)
 * Completion record (tag COMMITTED or REFUSED): u32 connection id | u32 PUBACK slot
 */
import type { SpscRingHandle } from "../../../core/threads.js";
import type { TelemetryTest } from "../../../devices/threads.js";

export const TAG_UPLINK = 0;
export const TAG_WILL = 1;
export const TAG_CLOSED = 2;
export const TAG_COMMITTED = 0;
export const TAG_REFUSED = 1;

export const UPLINK_HEADER_BYTES = 10;
/** Words of FrontWorkerData.counters (BigInt64, written by the worker with Atomics). */
export const COUNTER_TELEMETRY_CONFLATED = 0;
export const COUNTER_WORDS = 1;
export const COMPLETION_BYTES = 8;

/** A TLS listener's certificate, key and CA, read by the main thread (tls-files.ts). */
export interface TlsContents {
  cert: Uint8Array;
  key: Uint8Array;
  ca?: Uint8Array;
  minVersion: "TLSv1.2" | "TLSv1.3";
}

export interface FrontWorkerData {
  host: string;
  port: number;
  /** TLS on the listener, or null for plain TCP. */
  tls: TlsContents | null;
  maxConnections: number;
  /** ms a socket may take to send CONNECT and be logged in. */
  connectTimeout: number;
  /** Largest packet before login (bytes). */
  maxConnectSize: number;
  /** QoS 1 uplinks waiting for their PUBACK per connection; beyond it the connection is closed. */
  maxInflight: number;
  /** Addresses closed at accept the worker keeps (accept-bans.ts): the main thread's ban table's size. */
  maxAcceptBans: number;
  /** Uplinks that may be alerts, wills and closes: drained first. */
  uplink: SpscRingHandle;
  /** Uplinks that are certainly telemetry. */
  telemetry: SpscRingHandle;
  completions: SpscRingHandle;
  /** The worker's counters (COUNTER_*), read by the main thread at any time. */
  counters: SharedArrayBuffer;
}

/** Worker -> main. */
export type FromWorker =
  | { t: "ready"; port: number }
  | {
      t: "connect";
      conn: number;
      address: string;
      clientId: string;
      username: string | undefined;
      password: Uint8Array | undefined;
      /** Names of a client certificate the listener's CA verified (TLS with a ca); else empty. */
      certNames: string[];
      clean: boolean;
      protocolVersion: number;
    }
  | { t: "subscribe"; conn: number; messageId: number; filters: string[]; qos: number[] }
  | { t: "unsubscribe"; conn: number; filters: string[] }
  /** The device's PUBACK of a downlink (the worker sends no other QoS 1 message to a device). */
  | { t: "downlinkAcked"; conn: number }
  /** A connection that subscribed closed: after its last `downlinkAcked` (postMessage keeps the order). */
  | { t: "downlinkClosed"; conn: number }
  /** A refusal the worker decided (counted and logged by the main thread). */
  | {
      t: "rejected";
      conn: number | null;
      role: string | null;
      reason: string;
      detail: string;
      /** The peer's address, for a refusal before there is a connection (a failed TLS handshake). */
      address?: string;
    }
  | { t: "stopped" }
  /** The listener reported an error after it started (logged by the main thread). */
  | { t: "error"; message: string }
  | { t: "stats"; stats: FrontWorkerStats };

/** What the worker reports on request. */
export interface FrontWorkerStats {
  /** Its V8 heap, bytes. */
  heapUsed: number;
  heapTotal: number;
  /** Open sockets (logged in or not). */
  sockets: number;
  /** Uplinks that found the ring full and waited for room, since the start. */
  heldTotal: number;
}

/** Main -> worker. */
export type ToWorker =
  | {
      t: "login";
      conn: number;
      /** 0: accepted; else the CONNACK return code (MQTT 3.1.1 §3.2.2.3) and the connection is closed. */
      returnCode: number;
      uplinkTopic: string;
      /** Largest packet once logged in (bytes). */
      maxPacket: number;
      role: string;
    }
  /** A model's telemetryWhen (null: none), sent before the first login of the model and when it changes. */
  | { t: "model"; model: string; telemetryWhen: readonly TelemetryTest[] | null }
  | { t: "suback"; conn: number; messageId: number; granted: number[] }
  | { t: "deliver"; conn: number; topic: string; payload: Uint8Array; qos: 0 | 1 }
  | { t: "close"; conn: number }
  /**
   * A QoS 0 uplink of the connection was not kept: it takes nothing more in and closes once the
   * QoS 1 uplinks before it are answered (PubackQueue.refuseAfterPending), as for a QoS 1 one.
   */
  | { t: "refuse"; conn: number }
  /**
   * Tests only: that connection's close handling throws once, as a bug in it would
   * (test/device-listener.e2e.test.ts).
   */
  | { t: "failClose"; conn: number }
  /**
   * An address banned in both login scopes (login-guard.ts), closed at accept for `ms` from now as
   * on aedes' listeners; 0: its ban was lifted early. Sent for each ban as it starts, and every
   * ban in force to a worker that starts.
   */
  | { t: "ban"; address: string; ms: number }
  /** New certificate, key and CA for new handshakes (already checked by the main thread). */
  | { t: "tls"; tls: TlsContents }
  /**
   * The worker's figures; its heap after a full collection when the process runs with --expose-gc,
   * and a heap snapshot into `snapshot` (bench/connections.ts).
   */
  | { t: "stats"; snapshot?: string }
  | { t: "stop" };
