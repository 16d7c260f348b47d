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
 *   in all. Beyond the total, `overflow` says: "refuse" closes the new socket; "evict" closes one
 *   socket not marked authenticated, and the new one takes its place (refused only when every
 *   socket is authenticated). A few hosts filling the console (8 x 64 = 512) then evict their own
 *   sockets, not an operator's page or WebSocket. Which one, in this order:
 *   1. a waiting socket: no request in flight (a TLS handshake or headers not completed, as a
 *      slowloris keeps it; or idle between requests): the one waiting longest of the address
 *      holding the most waiting sockets;
 *   2. only when none waits, a busy one (a request in flight, such as a login whose password is
 *      being checked, or a WebSocket not yet logged in): the oldest of the address holding the most.
 *   An operator behind the same NAT as a flood thus keeps the socket its login is on; the
 *   flood's silent and half-sent sockets go first, its own and the NAT's alike.
 *
 * Refusals and evictions are reported to `onRefused`, counted and logged (rate-limited) by the caller.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
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
  /** `socket` was upgraded (a WebSocket not logged in yet): busy, evicted after every waiting one. */
  upgraded(socket: Socket): void;
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
  // A request in flight makes its socket busy until its response is done (or the socket gone).
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const socket = tcpSocketOf(req.socket);
    table.busy(socket);
    res.once("close", () => table.idle(socket));
  });
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
    upgraded: (socket) => table.busy(tcpSocketOf(socket)),
    get size() {
      return table.size;
    },
  };
}

/**
 * The sockets of one server by address, and those not authenticated by eviction tier (waiting,
 * busy: above), each in the order it entered its tier. Bounded by the server's maxConnections
 * (+1): a socket leaves at its close or eviction.
 */
export class SocketTable<S = Socket> {
  private readonly addresses = new Map<S, string>();
  private readonly perAddress = new Map<string, number>();
  /** Per address, its sockets not authenticated with no request in flight, longest waiting first. */
  private readonly waiting = new Map<string, Set<S>>();
  /** Per address, its sockets not authenticated with a request in flight (or upgraded), oldest first. */
  private readonly busySockets = new Map<string, Set<S>>();
  /** Requests in flight per busy socket (pipelined ones count each); absent: none. */
  private readonly inFlight = new Map<S, number>();

  constructor(private readonly maxPerAddress: number) {}

  get size(): number {
    return this.addresses.size;
  }

  /** False when `address` already holds its share. A new socket waits (nothing completed yet). */
  add(socket: S, address: string): boolean {
    const n = this.perAddress.get(address) ?? 0;
    if (n >= this.maxPerAddress) return false;
    this.perAddress.set(address, n + 1);
    this.addresses.set(socket, address);
    enter(this.waiting, address, socket);
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

  /** Never a victim from now on (it stays counted until it closes). */
  authenticated(socket: S): void {
    const address = this.addresses.get(socket);
    if (address !== undefined) this.unpend(socket, address);
  }

  /** A request begins on `socket` (or it was upgraded): busy until as many `idle` calls. */
  busy(socket: S): void {
    const address = this.addresses.get(socket);
    if (address === undefined) return;
    const n = this.inFlight.get(socket);
    if (n !== undefined) {
      this.inFlight.set(socket, n + 1);
      return;
    }
    // Authenticated: in neither tier, and stays so.
    if (!leave(this.waiting, address, socket)) return;
    this.inFlight.set(socket, 1);
    enter(this.busySockets, address, socket);
  }

  /** A request on `socket` is answered: when it was the last in flight, the socket waits again. */
  idle(socket: S): void {
    const n = this.inFlight.get(socket);
    const address = this.addresses.get(socket);
    if (n === undefined || address === undefined) return;
    if (n > 1) {
      this.inFlight.set(socket, n - 1);
      return;
    }
    this.inFlight.delete(socket);
    leave(this.busySockets, address, socket);
    enter(this.waiting, address, socket);
  }

  /**
   * The waiting socket waiting longest of the address holding the most waiting sockets (the first
   * such address on a tie); with none waiting, the oldest busy socket of the address holding the
   * most busy ones; undefined when every socket is authenticated. Scans the addresses (at most
   * maxConnections), only when the server is full.
   */
  evictionVictim(): S | undefined {
    return largest(this.waiting) ?? largest(this.busySockets);
  }

  private unpend(socket: S, address: string): void {
    leave(this.waiting, address, socket);
    if (this.inFlight.delete(socket)) leave(this.busySockets, address, socket);
  }
}

function enter<S>(tier: Map<string, Set<S>>, address: string, socket: S): void {
  let set = tier.get(address);
  if (set === undefined) tier.set(address, (set = new Set()));
  set.add(socket);
}

function leave<S>(tier: Map<string, Set<S>>, address: string, socket: S): boolean {
  const set = tier.get(address);
  if (!set?.delete(socket)) return false;
  if (set.size === 0) tier.delete(address);
  return true;
}

/** The first socket of the largest set (the first such address on a tie). */
function largest<S>(tier: Map<string, Set<S>>): S | undefined {
  let most: Set<S> | undefined;
  for (const set of tier.values()) if (most === undefined || set.size > most.size) most = set;
  return most?.values().next().value;
}
