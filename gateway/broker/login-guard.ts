/**
 * Connection attempts and failed logins, per source address and per device
 * username: a token bucket of new connections per address, and a temporary
 * ban after repeated failed logins (an unbanned gateway answered 5,000
 * wrong passwords at 2,189 per second). docs/security.md "Login bans".
 *
 * - Two scopes, `device` and `operator`, each with its own failure counts and
 *   address bans: guessing an operator's password (on the console or over
 *   MQTT) must never refuse a pendant's login from the same address (its
 *   emergency press), and guessing a device's must not lock operators out.
 *   A login is in the scope of the account its username names; an unknown or
 *   missing username is counted in both (it may have meant either), and
 *   refused while either bans its address.
 * - An address banned in both scopes is closed at accept, before a byte is
 *   read; banned in one, its logins in that scope are refused before any
 *   password is checked.
 * - A banned device username is refused without its password being checked,
 *   except from the address it last logged in from successfully: guessing a
 *   pendant's password from elsewhere must not lock the pendant itself out.
 *   From that address a device (an operator likewise) passes its scope's address
 *   ban too: another account's failures there must not lock it out.
 *   Operator usernames are never banned: anyone on the LAN could otherwise
 *   lock every operator out from every other address, during an incident.
 * - Tables are bounded (maxTracked each): the least recently seen address is
 *   forgotten first; bans are kept in their own tables, the oldest ban dropped
 *   first, so a flood of new addresses cannot evict them cheaply.
 * - Usernames are tracked only for devices that exist (the caller says), so
 *   unknown names cannot grow the table.
 * - Every time here (failure windows, bans' ends) is on the monotonic clock: a
 *   step of the wall clock (NTP correcting a box that booted with a wrong time)
 *   must neither stretch a ban by a day nor end it at once.
 */

import { TokenBucket } from "./token-bucket.js";

export interface LoginGuardConfig {
  attemptsPerSecond: number;
  attemptBurst: number;
  maxFailures: number;
  failureWindow: number;
  banDuration: number;
  maxTracked: number;
}

/** Whose logins a ban or a failure concerns. */
export type LoginScope = "device" | "operator";
/** Whom a login's username names: a device, an operator, or no account (counted in both scopes). */
export type Claimant = LoginScope | "unknown";

export type BanKind = "address" | "username";

export interface LoginGuardEvents {
  /** Called once when a ban starts; `ms`: how long it lasts. */
  banned(kind: BanKind, scope: LoginScope, key: string, ms: number, failures: number): void;
  /**
   * An address comes to be banned in both scopes (closed at accept) for `ms`, or (null) one of
   * its bans was dropped before its end (the ban table full): for a listener that cannot ask at
   * accept (the device listener's worker).
   */
  closedAtAccept?(address: string, ms: number | null): void;
}

interface Window {
  failures: number;
  windowStart: number;
}

interface Tracked {
  bucket: TokenBucket;
  device: Window;
  operator: Window;
}

interface UserTracked extends Window {
  /** The address of the last successful login. */
  goodAddress: string | null;
}

export type Admission = "ok" | "banned" | "rate-limited";

/** Why a login is refused before its password is checked, and for how long still (ms). */
export interface LoginBan {
  kind: BanKind;
  /** The ban's end, on the guard's (monotonic) clock. */
  until: number;
  /** What is left of it. */
  ms: number;
}

const SCOPES: Record<Claimant, readonly LoginScope[]> = {
  device: ["device"],
  operator: ["operator"],
  unknown: ["device", "operator"],
};

export class LoginGuard {
  private readonly addresses = new Map<string, Tracked>();
  private readonly users = new Map<string, UserTracked>();
  private readonly addressBans: Record<LoginScope, Map<string, number>> = {
    device: new Map(),
    operator: new Map(),
  };
  private readonly userBans = new Map<string, number>();
  /** Operator -> the address of its last successful login (one per configured operator). */
  private readonly operatorGood = new Map<string, string>();
  bansStarted = 0;

  constructor(
    private readonly cfg: LoginGuardConfig,
    private readonly events: LoginGuardEvents,
    /** Monotonic milliseconds (not the wall clock, which steps). */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** At accept, before the username is known: may this address open a connection now? */
  admitConnection(address: string): Admission {
    const t = this.now();
    if (
      this.addressBanEnd("device", address, t) !== null &&
      this.addressBanEnd("operator", address, t) !== null
    )
      return "banned";
    return this.address(address, t).bucket.take(t) ? "ok" : "rate-limited";
  }

  /**
   * At accept on a port that answers login bans itself (the console, which must load its page
   * and say why a login is refused): the address's connection rate only, never its bans.
   */
  admitConnectionRate(address: string): Admission {
    const t = this.now();
    return this.address(address, t).bucket.take(t) ? "ok" : "rate-limited";
  }

  /** The addresses banned in both scopes now (closed at accept), and until when. */
  closedAtAcceptNow(): [address: string, until: number][] {
    const t = this.now();
    const out: [string, number][] = [];
    for (const address of [...this.addressBans.device.keys()]) {
      const until = this.closedAtAcceptUntil(address, t);
      if (until !== null) out.push([address, until]);
    }
    return out;
  }

  /** Before the password is checked: the ban that refuses this login, or null. */
  admitLogin(address: string, username: string | undefined, claimant: Claimant): LoginBan | null {
    const t = this.now();
    // A desk whose console reconnects (a network blip) while a colleague's typos have banned its
    // address must not lose its alerts: an operator who last logged in from here is let through to
    // the password check (itself queued and bounded). So is a device from its last good address:
    // a base station carries many pendants on one address, and one pendant with a wrong password
    // (not yet given its rotated secret) banned the address for all of them, so a pendant that
    // reconnected after a blip could not send its press for 5 minutes.
    const regular =
      username !== undefined &&
      (claimant === "operator"
        ? this.operatorGood.get(username) === address
        : claimant === "device" && this.users.get(username)?.goodAddress === address);
    for (const scope of SCOPES[claimant]) {
      const until = this.addressBanEnd(scope, address, t);
      if (until !== null && !regular) return { kind: "address", until, ms: until - t };
    }
    if (claimant !== "device" || username === undefined) return null;
    const until = this.userBanEnd(username, t);
    if (until === null || this.users.get(username)?.goodAddress === address) return null;
    return { kind: "username", until, ms: until - t };
  }

  /**
   * A failed login. `badPassword`: the username named a device that exists (its password was
   * wrong): the username's own failures are counted too.
   */
  failed(address: string, username: string | undefined, claimant: Claimant, badPassword = false): void {
    const t = this.now();
    const a = this.address(address, t);
    for (const scope of SCOPES[claimant])
      if (this.count(a[scope], t)) this.ban(scope, "address", address, t, a[scope].failures);
    if (claimant !== "device" || !badPassword || username === undefined) return;
    let u = this.users.get(username);
    if (!u) {
      u = { failures: 0, windowStart: t, goodAddress: null };
      this.remember(this.users, username, u);
    }
    if (this.count(u, t)) this.ban("device", "username", username, t, u.failures);
  }

  succeeded(address: string, username: string, claimant: Claimant): void {
    if (claimant === "operator") {
      this.remember(this.operatorGood, username, address);
      return;
    }
    if (claimant !== "device") return;
    const u = this.users.get(username);
    if (u) {
      u.goodAddress = address;
      u.failures = 0;
    } else
      this.remember(this.users, username, { failures: 0, windowStart: this.now(), goodAddress: address });
  }

  stats(): {
    addresses: number;
    usernames: number;
    deviceAddressBans: number;
    operatorAddressBans: number;
    usernameBans: number;
  } {
    return {
      addresses: this.addresses.size,
      usernames: this.users.size,
      deviceAddressBans: this.addressBans.device.size,
      operatorAddressBans: this.addressBans.operator.size,
      usernameBans: this.userBans.size,
    };
  }

  /** Counts a failure in its window; true when it reaches maxFailures. */
  private count(e: Window, t: number): boolean {
    if (t - e.windowStart > this.cfg.failureWindow) {
      e.failures = 0;
      e.windowStart = t;
    }
    e.failures++;
    return e.failures >= this.cfg.maxFailures;
  }

  private ban(scope: LoginScope, kind: BanKind, key: string, t: number, failures: number): void {
    const bans = kind === "address" ? this.addressBans[scope] : this.userBans;
    const current = kind === "address" ? this.addressBanEnd(scope, key, t) : this.userBanEnd(key, t);
    if (current !== null) return;
    const until = t + this.cfg.banDuration;
    const dropped = this.remember(bans, key, until);
    this.bansStarted++;
    this.events.banned(kind, scope, key, this.cfg.banDuration, failures);
    if (kind !== "address" || this.events.closedAtAccept === undefined) return;
    if (dropped !== undefined) this.events.closedAtAccept(dropped, null);
    const closedUntil = this.closedAtAcceptUntil(key, t);
    if (closedUntil !== null) this.events.closedAtAccept(key, closedUntil - t);
  }

  /** When the address's ban in both scopes ends (the first of its two bans to end), or null. */
  private closedAtAcceptUntil(address: string, t: number): number | null {
    const device = this.addressBanEnd("device", address, t);
    const operator = device === null ? null : this.addressBanEnd("operator", address, t);
    return device === null || operator === null ? null : Math.min(device, operator);
  }

  /** When the address's ban in `scope` ends, or null when it is not banned. */
  private addressBanEnd(scope: LoginScope, address: string, t: number): number | null {
    const bans = this.addressBans[scope];
    const until = bans.get(address);
    if (until === undefined) return null;
    if (t < until) return until;
    bans.delete(address);
    // A ban served starts a new failure window.
    const a = this.addresses.get(address);
    if (a) a[scope].failures = 0;
    return null;
  }

  private userBanEnd(username: string, t: number): number | null {
    const until = this.userBans.get(username);
    if (until === undefined) return null;
    if (t < until) return until;
    this.userBans.delete(username);
    const u = this.users.get(username);
    if (u) u.failures = 0;
    return null;
  }

  private address(address: string, t: number): Tracked {
    let a = this.addresses.get(address);
    if (a) {
      // Most recently seen last: the first entry is the one to forget.
      this.addresses.delete(address);
      this.addresses.set(address, a);
      return a;
    }
    a = {
      bucket: new TokenBucket(this.cfg.attemptsPerSecond, this.cfg.attemptBurst, t),
      device: { failures: 0, windowStart: t },
      operator: { failures: 0, windowStart: t },
    };
    this.remember(this.addresses, address, a);
    return a;
  }

  /** Returns the key forgotten to make room, if any. */
  private remember<V>(map: Map<string, V>, key: string, value: V): string | undefined {
    map.delete(key);
    map.set(key, value);
    if (map.size <= this.cfg.maxTracked) return undefined;
    const oldest = map.keys().next().value as string;
    map.delete(oldest);
    return oldest;
  }
}
