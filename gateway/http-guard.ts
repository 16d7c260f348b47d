/**
 * What one HTTP server of the gateway (the console, the metrics port, an MQTT-over-WebSocket
 * listener) may hold of the process's file descriptors (docs/security.md "Limits"). Node's HTTP
 * server alone accepts any number of sockets and checks `headersTimeout` only every 30 s: a socket
 * that sends nothing, or its headers a byte at a time, lived 30 s, so one LAN host opening 2,200 a
 * second held the descriptor limit (65,536 under deploy/linli.service), after which the MQTT
 * listeners could accept no pendant's reconnect and the journal could open no file.
 *
 * - `headersTimeout` and `requestTimeout` are checked every second (connectionsCheckingInterval):
 *   a socket that has not sent its headers in 5 s is closed within 6;
 * - a socket with no bytes either way for `idleTimeoutMs` is closed (server.setTimeout: a client
 *   that does not read its response; a WebSocket clears it, MQTT keepalive watches it then);
 * - every accepted socket passes `admit` first (the address's connection rate and login bans),
 *   before a TLS handshake or an HTTP parser costs anything (accept-gate.ts);
 * - at most `perAddress` sockets from one address (beyond: closed at accept) and `maxConnections`
 *   in all. Beyond the total, `overflow` says: "refuse" closes the new socket; "evict" closes the
 *   oldest socket not marked authenticated of the address holding the most such sockets, and the
 *   new one takes its place (refused only when every socket is authenticated). A few hosts filling
 *   the console (8 x 64 = 512) then evict their own sockets, not an operator's page or WebSocket.
 *
 * Refusals and evictions are reported to `onRefused`, counted and logged (rate-limited) by the caller.
 */
import type { Server } from "node:http";
import type { Socket } from "node:net";
import { gateConnections, tcpSocketOf } from "./accept-gate.js";

export type HttpRefusal = "total" | "per-address" | "evicted";

export interface HttpGuardOptions {
  maxConnections: number;
  perAddress: number;
  idleTimeoutMs: number;
  /** Beyond maxConnections: close the new socket ("refuse", default) or evict (above). */
  overflow?: "refuse" | "evict";
  /** At accept, before anything else: false when it refused (closed and counted) the socket. */
  admit?: (socket: Socket) => boolean;
  /** A socket closed at accept (over the total, over its address's share) or evicted. */
  onRefused?: (address: string, why: HttpRefusal) => void;
}

export interface HttpGuard {
  /** `socket` (or the TLS socket over it) belongs to a logged-in operator: never evicted. */
  authenticated(socket: Socket): void;
  /** Sockets held now. */
  readonly size: number;
}

/** How often Node checks headersTimeout and requestTimeout (its default, 30 s, let slow headers live 35 s). */
export const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;

export function guardHttpServer(server: Server, opts: HttpGuardOptions): HttpGuard {
  const evict = opts.overflow === "evict";
  const table = new SocketTable(opts.perAddress);
  // Evicting: the new socket is accepted, then one is evicted, synchronously (destroy() lowers
  // Node's count at once); the one beyond is the socket in hand. Refusing: Node drops it at accept.
  server.maxConnections = evict ? opts.maxConnections + 1 : opts.maxConnections;
  server.on("drop", (d?: { remoteAddress?: string }) =>
    opts.onRefused?.(d?.remoteAddress ?? "unknown", "total"),
  );
  // No 'timeout' listener on the server: Node destroys the socket.
  server.setTimeout(opts.idleTimeoutMs);
  gateConnections(server, (s: Socket) => {
    if (opts.admit && !opts.admit(s)) return false;
    const address = s.remoteAddress ?? "unknown";
    if (!table.add(s, address)) {
      s.destroy();
      opts.onRefused?.(address, "per-address");
      return false;
    }
    s.once("close", () => table.remove(s));
    if (!evict || table.size <= opts.maxConnections) return true;
    const victim = table.evictionVictim();
    if (victim === undefined) {
      table.remove(s);
      s.destroy();
      opts.onRefused?.(address, "total");
      return false;
    }
    const victimAddress = table.remove(victim) as string;
    victim.destroy();
    opts.onRefused?.(victimAddress, "evicted");
    return victim !== s;
  });
  return {
    authenticated: (socket) => table.authenticated(tcpSocketOf(socket)),
    get size() {
      return table.size;
    },
  };
}

/**
 * The sockets of one server by address, and those not authenticated in accept order. Bounded by
 * the server's maxConnections (+1): a socket leaves at its close or eviction.
 */
export class SocketTable<S = Socket> {
  private readonly addresses = new Map<S, string>();
  private readonly perAddress = new Map<string, number>();
  /** Per address, its sockets not authenticated, oldest first (a Set keeps insertion order). */
  private readonly pending = new Map<string, Set<S>>();

  constructor(private readonly maxPerAddress: number) {}

  get size(): number {
    return this.addresses.size;
  }

  /** False when `address` already holds its share. */
  add(socket: S, address: string): boolean {
    const n = this.perAddress.get(address) ?? 0;
    if (n >= this.maxPerAddress) return false;
    this.perAddress.set(address, n + 1);
    this.addresses.set(socket, address);
    let set = this.pending.get(address);
    if (set === undefined) this.pending.set(address, (set = new Set()));
    set.add(socket);
    return true;
  }

  /** Forgets `socket` (idempotent); returns its address, or undefined if it was not held. */
  remove(socket: S): string | undefined {
    const address = this.addresses.get(socket);
    if (address === undefined) return undefined;
    this.addresses.delete(socket);
    const n = (this.perAddress.get(address) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(address);
    else this.perAddress.set(address, n);
    this.unpend(socket, address);
    return address;
  }

  authenticated(socket: S): void {
    const address = this.addresses.get(socket);
    if (address !== undefined) this.unpend(socket, address);
  }

  /**
   * The oldest socket not authenticated of the address holding the most of them (the first such
   * address on a tie), or undefined when every socket is authenticated. Scans the addresses (at
   * most maxConnections), only when the server is full.
   */
  evictionVictim(): S | undefined {
    let most: Set<S> | undefined;
    for (const set of this.pending.values()) if (most === undefined || set.size > most.size) most = set;
    return most?.values().next().value;
  }

  private unpend(socket: S, address: string): void {
    const set = this.pending.get(address);
    if (set?.delete(socket) && set.size === 0) this.pending.delete(address);
  }
}
