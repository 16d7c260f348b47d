/**
 * The limits of one broker's connections, behind a few hook calls in
 * embedded.ts: at accept (banned or too frequent addresses), around login
 * (banned usernames, failures counted, the role's packet size) and at
 * subscribe (subscriptions per client). docs/security.md "Limits".
 */
import type { Socket } from "node:net";
import type { Client } from "aedes";
import { tcpSocketOf } from "../accept-gate.js";
import type { LimitsConfig } from "../config/limits.js";
import { DEFAULT_LIMITS } from "../config/limits.js";
import type { Logger, RateLimitedLog } from "../log.js";
import type { Counters } from "../stats.js";
import type { AuthResult, Identity } from "./access.js";
import { deviceMaxPacket, FrameGuard, type FrameRefused } from "./limits.js";
import { type Claimant, type LoginBan, LoginGuard } from "./login-guard.js";
import { FloodReclaim } from "./reclaim.js";

export type ConnectionLimits = Omit<LimitsConfig, "deviceRate">;
/** An address to close at accept for `ms` from now (0: no longer). */
export type AcceptBanWatcher = (address: string, ms: number) => void;
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = DEFAULT_LIMITS;

/** Unauthenticated sockets closed per turn of the event loop once their login time is up. */
const CLOSE_BATCH = 50;

/**
 * The login timer may fire while the clock still reads a millisecond or two before the deadline
 * (timers and performance.now() round differently). Re-arming for those 1-2 ms let aedes' own connect timer,
 * armed for the same timeout when the socket's first bytes arrived, close the socket first,
 * uncounted (test/limits.e2e.test.ts failed 1 run in 6). A socket within this of its deadline is
 * closed now.
 */
const TIMER_SLACK_MS = 5;

/**
 * Entries of the login-deadline queue kept before it is compacted (below which it never is): a
 * socket stays in the queue until its deadline even when it closed long before, so a flood of
 * connections closed at once (thousands a second from many addresses) would otherwise hold every
 * one of those closed sockets, and what hangs on them, for connectTimeout.
 */
const AWAIT_COMPACT_MIN = 1024;

/** Counted under this "model" in linli_rejections_total: nobody has logged in yet. */
const BEFORE_LOGIN = "connection";

function ignoreError(): void {}

export class SocketLimits {
  readonly login: LoginGuard;
  private readonly frames = new WeakMap<Socket, FrameGuard>();
  /** Streams whose address is another socket's (WebSockets: the TCP socket under them). */
  private readonly peers = new WeakMap<Socket, string>();
  private readonly subscriptions = new WeakMap<Client, Set<string>>();
  /** Told once the socket logs in as an operator (the console's WebSocket slots). */
  private readonly operatorWatchers = new WeakMap<Socket, () => void>();
  /**
   * Sockets in accept order (so deadline order: one timeout for all), and their deadlines (ms) at
   * the same index; logged-in or gone ones skipped. Two flat arrays rather than a record per
   * socket: ~60 B per connection until its deadline passes (10,000 devices reconnecting at once).
   * Bounded by the sockets waiting for their login, not by the connections accepted within
   * connectTimeout: compacted (compactAwaiting) when closed and logged-in ones outnumber them.
   */
  private awaitSockets: (Socket | undefined)[] = [];
  private awaitDeadlines: number[] = [];
  private awaitHead = 0;
  /** Queue entries (past the head) beyond which it is compacted: twice what was left at the last one. */
  private awaitCompactAt = AWAIT_COMPACT_MIN;
  private loginTimer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  private stopped = false;
  private readonly reclaim = new FloodReclaim();
  private readonly acceptBanWatchers = new Set<AcceptBanWatcher>();
  /** TCP sockets admitted by admitTcp, whose MQTT stream is not admitted (counted) a second time. */
  private readonly admittedTcp = new WeakSet<Socket>();

  constructor(
    readonly config: ConnectionLimits,
    private readonly counters: Counters,
    private readonly log: Logger,
    /** Malformed packets' lines (as aedes' own refusals are logged, embedded.ts); none if absent. */
    private readonly rateLog: RateLimitedLog | null = null,
    /** Monotonic milliseconds: login deadlines and bans must not move with a step of the wall clock. */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.login = new LoginGuard(
      config.login,
      {
        // Logged once per ban; every refusal during it is only counted.
        banned: (kind, scope, key, ms, failures) => {
          this.counters.reject("auth", "ban-started");
          // The end as operators read it (wall clock); the ban itself runs on the monotonic clock.
          this.log.warn(
            { [kind]: key, scope, failures, until: new Date(Date.now() + ms).toISOString() },
            `${kind} banned for ${scope} logins after repeated failed logins`,
          );
        },
        closedAtAccept: (address, ms) => {
          for (const w of this.acceptBanWatchers) w(address, ms === null ? 0 : Math.max(0, ms));
        },
      },
      now,
    );
  }

  /*
   * The handlers below are shared by every connection (one function per broker, not a closure per
   * socket): with 10,000 devices each on its own connection, per-socket closures and their contexts
   * are memory (bench/connections.ts).
   */
  private readonly frameRefused: FrameRefused = (reason, announced, limit, guard, detail) => {
    this.counters.reject(guard.role ?? BEFORE_LOGIN, reason);
    if (reason === "malformed-packet") {
      const who = this.addressOf(guard.socket);
      this.rateLog?.warn(
        who,
        reason,
        { who, role: guard.role, reason, detail },
        "connection closed: malformed packet or protocol violation",
      );
      return;
    }
    this.log.debug(
      { address: this.addressOf(guard.socket), reason, announced, limit },
      "connection closed: packet too large",
    );
  };

  /** A socket closed: before login, it counts towards the flood reclaim (reclaim.ts). */
  private readonly socketClosed = ((limits: SocketLimits) =>
    function socketClosed(this: Socket): void {
      if (limits.frames.get(this)?.role === null) limits.reclaim.closedBeforeLogin();
    })(this);

  /**
   * At accept. A banned or too frequent address is closed at once. Otherwise the socket is
   * handed to aedes (`handOver`) only when its first bytes arrive: an idle socket costs a
   * descriptor and a timer, not an MQTT client (3,000 idle sockets handed to aedes at once
   * held alerts up to 96 ms). Not logged in within connectTimeout: closed.
   */
  /**
   * `socket` is what aedes will read (a TCP or TLS socket, or a WebSocket's stream); `peer` is the
   * TCP socket under it, whose address the rate limits and bans count.
   */
  accept(socket: Socket, handOver: () => void, peer: Socket = socket): void {
    // Before aedes listens for them, a reset connection's errors must not be unhandled.
    socket.on("error", ignoreError);
    const address = addressOf(peer);
    if (peer !== socket) this.peers.set(socket, address);
    if (!this.admitOnce(socket, peer, address)) return;
    const guard = new FrameGuard(socket, this.config.maxConnectSize, this.frameRefused);
    this.frames.set(socket, guard);
    socket.on("close", this.socketClosed);
    this.awaitSockets.push(socket);
    this.awaitDeadlines.push(this.now() + this.config.connectTimeout);
    if (this.awaitSockets.length - this.awaitHead > this.awaitCompactAt) this.compactAwaiting();
    this.armLoginTimer();
    // On the next tick: Node forgets this listener (readableListening) only then, and aedes'
    // own "readable" listener is told of the bytes already buffered only if it has been.
    socket.once("readable", () => process.nextTick(handOver));
  }

  /**
   * The login-deadline queue holds only sockets still open and not logged in, in deadline order:
   * bounded by twice the sockets waiting for their login (each listener's maxConnections bounds
   * those), or AWAIT_COMPACT_MIN. Amortised: a compaction keeps at most half of what it scans.
   */
  private compactAwaiting(): void {
    const sockets: (Socket | undefined)[] = [];
    const deadlines: number[] = [];
    for (let i = this.awaitHead; i < this.awaitSockets.length; i++) {
      const socket = this.awaitSockets[i];
      if (socket === undefined || socket.destroyed || this.frames.get(socket)?.role !== null) continue;
      sockets.push(socket);
      deadlines.push(this.awaitDeadlines[i] as number);
    }
    this.awaitSockets = sockets;
    this.awaitDeadlines = deadlines;
    this.awaitHead = 0;
    this.awaitCompactAt = Math.max(AWAIT_COMPACT_MIN, 2 * sockets.length);
  }

  /** Sockets in the login-deadline queue (open and waiting for their login, or not yet dropped). */
  get awaitingLogin(): number {
    return this.awaitSockets.length - this.awaitHead;
  }

  /**
   * A WebSocket connection: the source address's rate limit and bans apply; aedes reads the MQTT
   * bytes out of the WebSocket messages as a byte stream (ws' createWebSocketStream), with
   * `read(null)` as from a socket, so the same frame guard sizes and checks its packets; aedes'
   * connect timeout closes one that never logs in.
   */
  acceptStream(stream: Socket, handOver: () => void, peer: Socket, bansAtLogin = false): void {
    stream.on("error", () => {});
    const address = addressOf(peer);
    this.peers.set(stream, address);
    if (!this.admitOnce(stream, peer, address, bansAtLogin)) return;
    this.frames.set(stream, new FrameGuard(stream, this.config.maxConnectSize, this.frameRefused));
    handOver();
  }

  /**
   * At TCP accept, before a TLS handshake or an HTTP request is read (the TLS and WebSocket
   * listeners: accept-gate.ts; the console and metrics ports: admitTcpRateOnly): a banned or too frequent
   * address is closed there, counted as at accept. A handshake costs the main thread a key
   * exchange and a signature; refused only after it, a host looping on handshakes cost that each
   * time. A socket admitted here takes no second token when its MQTT stream is accepted.
   */
  readonly admitTcp = (socket: Socket): boolean => {
    socket.on("error", ignoreError);
    if (!this.admit(socket, addressOf(socket))) return false;
    this.admittedTcp.add(socket);
    return true;
  };

  /**
   * The console's and the metrics port's TCP sockets at accept (before TLS): the address's
   * connection rate only. A login ban refuses the console's logins (429 on /api/site, CONNACK 4 on
   * /mqtt), never its page: an operator at a banned desk is told why and until when instead of
   * getting a reset connection. The metrics port checks no login the bans guard (its secret is its
   * own, 64 bits or more): a scraper behind the same NAT as a banned desk keeps its scrapes. The
   * rate bounds the handshakes a banned address can ask for exactly as any other address's.
   */
  readonly admitTcpRateOnly = (socket: Socket): boolean => {
    socket.on("error", ignoreError);
    if (!this.admit(socket, addressOf(socket), true)) return false;
    this.admittedTcp.add(socket);
    return true;
  };

  /** The stream's TCP socket was admitted at accept (once), or the address may connect now. */
  private admitOnce(stream: Socket, peer: Socket, address: string, rateOnly = false): boolean {
    return this.admittedTcp.delete(tcpSocketOf(peer)) || this.admit(stream, address, rateOnly);
  }

  private admit(socket: Socket, address: string, rateOnly = false): boolean {
    const admission = rateOnly
      ? this.login.admitConnectionRate(address)
      : this.login.admitConnection(address);
    if (admission === "ok") return true;
    this.counters.reject(BEFORE_LOGIN, admission === "banned" ? "address-banned" : "address-rate-limited");
    socket.destroy();
    this.reclaim.closedBeforeLogin();
    return false;
  }

  /**
   * For a listener that accepts where it cannot ask (the device listener's worker): `watcher` is
   * told at once of every address closed at accept now (banned in both scopes), then of each
   * address that comes to be, and of one whose ban is lifted early (`ms` 0). Returns the unwatch.
   */
  watchAcceptBans(watcher: AcceptBanWatcher): () => void {
    this.acceptBanWatchers.add(watcher);
    this.sendAcceptBans(watcher);
    return () => this.acceptBanWatchers.delete(watcher);
  }

  /** Every address closed at accept now, to `watcher` (a device listener worker restarted). */
  sendAcceptBans(watcher: AcceptBanWatcher): void {
    const t = this.now();
    for (const [address, until] of this.login.closedAtAcceptNow()) watcher(address, until - t);
  }

  /** A WebSocket stream's address is its TCP socket's (accept's `peer`). */
  private addressOf(socket: Socket): string {
    return this.peers.get(socket) ?? addressOf(socket);
  }

  /** Stops the login timer (the broker is closing). */
  close(): void {
    this.stopped = true;
    this.reclaim.stop();
    if (this.loginTimer && "refresh" in this.loginTimer) clearTimeout(this.loginTimer);
    else if (this.loginTimer) clearImmediate(this.loginTimer as NodeJS.Immediate);
    this.loginTimer = null;
    this.awaitSockets = [];
    this.awaitDeadlines = [];
    this.awaitHead = 0;
  }

  private armLoginTimer(): void {
    if (this.loginTimer !== null || this.stopped) return;
    const deadline = this.awaitDeadlines[this.awaitHead];
    if (deadline === undefined) return;
    this.loginTimer = setTimeout(this.closeUnauthenticated, Math.max(0, deadline - this.now()));
  }

  /**
   * Closes sockets past their login deadline, at most CLOSE_BATCH per turn of the event loop:
   * 3,000 idle sockets opened together fall due together, and closing them in one callback
   * held a pendant's alert 69 ms behind it.
   */
  private readonly closeUnauthenticated = (): void => {
    this.loginTimer = null;
    if (this.stopped) return;
    const now = this.now();
    let closed = 0;
    while (this.awaitHead < this.awaitSockets.length) {
      const socket = this.awaitSockets[this.awaitHead] as Socket;
      if (this.frames.get(socket)?.role === null && !socket.destroyed) {
        if ((this.awaitDeadlines[this.awaitHead] as number) > now + TIMER_SLACK_MS) break;
        if (closed === CLOSE_BATCH) {
          this.loginTimer = setImmediate(this.closeUnauthenticated);
          return;
        }
        this.counters.reject(BEFORE_LOGIN, "login-timeout");
        socket.destroy();
        closed++;
      }
      this.awaitSockets[this.awaitHead++] = undefined;
    }
    if (this.awaitHead > 1024 && this.awaitHead * 2 > this.awaitSockets.length) {
      this.awaitSockets = this.awaitSockets.slice(this.awaitHead);
      this.awaitDeadlines = this.awaitDeadlines.slice(this.awaitHead);
      this.awaitHead = 0;
    }
    this.armLoginTimer();
  };

  /**
   * Before the password is checked: the ban that refuses this login (counted), or null.
   * `claimant`: whom the username names (AccessPolicy.claimant), the scope of the ban.
   */
  loginBannedAt(address: string, username: string | undefined, claimant: Claimant): LoginBan | null {
    const ban = this.login.admitLogin(address, username, claimant);
    if (ban !== null)
      this.counters.reject("auth", ban.kind === "address" ? "address-banned" : "username-banned");
    return ban;
  }

  /** `watcher` is called once `socket` has logged in as an operator. */
  onOperatorLogin(socket: Socket, watcher: () => void): void {
    this.operatorWatchers.set(socket, watcher);
  }

  /** Logged in on `socket`: the identity's role's packet size applies from now on. */
  loggedIn(socket: Socket, identity: Identity): void {
    const watcher = this.operatorWatchers.get(socket);
    if (watcher !== undefined && identity.kind === "operator") {
      this.operatorWatchers.delete(socket);
      watcher();
    }
    const guard = this.frames.get(socket);
    if (!guard) return;
    const limit = packetLimitOf(identity, this.config.operatorMaxPacket);
    guard.setLimit(limit.bytes, limit.role);
  }

  /** The largest packet `socket` may send now (its role's once logged in), 0 if not guarded. */
  packetLimit(socket: Socket): number {
    return this.frames.get(socket)?.packetLimit ?? 0;
  }

  /** After the password was checked: failures counted towards the bans, a success remembered. */
  loginResultAt(address: string, username: string | undefined, claimant: Claimant, result: AuthResult): void {
    if (result.ok) {
      if (username !== undefined) this.login.succeeded(address, username, claimant);
      return;
    }
    // auth-busy: the password was never checked (verifications queue full, a reconnect storm); a
    // base station's pendants refused for it must not get their address banned.
    if (result.reason !== "auth-busy")
      this.login.failed(address, username, claimant, result.reason === "bad-password");
  }

  /** The address a connection's logins are counted under (a WebSocket's is its TCP socket's). */
  addressOfConnection(socket: Socket): string {
    return this.addressOf(socket);
  }

  /** A granted subscription; false when the client already has maxSubscriptions. */
  subscribe(client: Client, filter: string): boolean {
    let subs = this.subscriptions.get(client);
    if (!subs) this.subscriptions.set(client, (subs = new Set()));
    if (subs.has(filter)) return true;
    if (subs.size >= this.config.maxSubscriptions) return false;
    subs.add(filter);
    return true;
  }

  unsubscribe(client: Client | null | undefined, filters: readonly string[]): void {
    const subs = client ? this.subscriptions.get(client) : undefined;
    if (subs) for (const f of filters) subs.delete(f);
  }
}

/** The largest packet a logged-in identity may send, and the role it is counted under. */
export function packetLimitOf(
  identity: Identity,
  operatorMaxPacket: number,
): { bytes: number; role: string } {
  if (identity.kind === "operator") return { bytes: operatorMaxPacket, role: "operator" };
  const d = identity.device;
  // Only MQTT devices hold broker credentials (AccessPolicy).
  const payload = d.profile.transport === "mqtt" ? d.profile.maxPayloadBytes : 0;
  return { bytes: deviceMaxPacket(d.model, d.id, payload), role: d.model };
}

function addressOf(socket: Socket): string {
  return socket.remoteAddress ?? "unknown";
}
