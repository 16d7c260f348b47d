/**
 * Connection attempts and failed logins, per source address and per
 * username: a token bucket of new connections per address, and a temporary
 * ban after repeated failed logins (an unbanned gateway answered 5,000
 * wrong passwords at 2,189 per second).
 *
 * - A banned address is closed at accept, before a byte is read.
 * - A banned username is refused without its password being checked, except
 *   from the address it last logged in from successfully: guessing a
 *   pendant's password from elsewhere must not lock the pendant itself out.
 * - Tables are bounded (maxTracked each): the least recently seen address is
 *   forgotten first; bans are kept in their own table, the oldest ban dropped
 *   first, so a flood of new addresses cannot evict them cheaply.
 * - Usernames are tracked only for identities that exist (the caller says),
 *   so unknown names cannot grow the table.
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

export type BanKind = "address" | "username";

export interface LoginGuardEvents {
  /** Called once when a ban starts. */
  banned(kind: BanKind, key: string, until: number, failures: number): void;
}

interface Tracked {
  bucket: TokenBucket;
  failures: number;
  windowStart: number;
}

interface UserTracked {
  failures: number;
  windowStart: number;
  /** The address of the last successful login. */
  goodAddress: string | null;
}

export type Admission = "ok" | "banned" | "rate-limited";

export class LoginGuard {
  private readonly addresses = new Map<string, Tracked>();
  private readonly users = new Map<string, UserTracked>();
  private readonly addressBans = new Map<string, number>();
  private readonly userBans = new Map<string, number>();
  bansStarted = 0;

  constructor(
    private readonly cfg: LoginGuardConfig,
    private readonly events: LoginGuardEvents,
    private readonly now: () => number = Date.now,
  ) {}

  /** At accept: may this address open a connection now? */
  admitConnection(address: string): Admission {
    const t = this.now();
    if (this.isBanned(this.addressBans, address, t)) return "banned";
    return this.address(address, t).bucket.take(t) ? "ok" : "rate-limited";
  }

  /** Before the password is checked: is this username banned for this address? */
  admitLogin(address: string, username: string): Admission {
    const t = this.now();
    if (this.isBanned(this.addressBans, address, t)) return "banned";
    if (!this.isBanned(this.userBans, username, t)) return "ok";
    return this.users.get(username)?.goodAddress === address ? "ok" : "banned";
  }

  /** A failed login; `knownUser` when the username names a configured identity. */
  failed(address: string, username: string | undefined, knownUser: boolean): void {
    const t = this.now();
    const a = this.address(address, t);
    if (this.count(a, t)) this.ban(this.addressBans, "address", address, t, a.failures);
    if (!knownUser || username === undefined) return;
    let u = this.users.get(username);
    if (!u) {
      u = { failures: 0, windowStart: t, goodAddress: null };
      this.remember(this.users, username, u);
    }
    if (this.count(u, t)) this.ban(this.userBans, "username", username, t, u.failures);
  }

  succeeded(address: string, username: string): void {
    const u = this.users.get(username);
    if (u) {
      u.goodAddress = address;
      u.failures = 0;
    } else
      this.remember(this.users, username, { failures: 0, windowStart: this.now(), goodAddress: address });
  }

  stats(): { addresses: number; usernames: number; addressBans: number; usernameBans: number } {
    return {
      addresses: this.addresses.size,
      usernames: this.users.size,
      addressBans: this.addressBans.size,
      usernameBans: this.userBans.size,
    };
  }

  /** Counts a failure in its window; true when it reaches maxFailures. */
  private count(e: { failures: number; windowStart: number }, t: number): boolean {
    if (t - e.windowStart > this.cfg.failureWindow) {
      e.failures = 0;
      e.windowStart = t;
    }
    e.failures++;
    return e.failures >= this.cfg.maxFailures;
  }

  private ban(bans: Map<string, number>, kind: BanKind, key: string, t: number, failures: number): void {
    if (this.isBanned(bans, key, t)) return;
    const until = t + this.cfg.banDuration;
    this.remember(bans, key, until);
    this.bansStarted++;
    this.events.banned(kind, key, until, failures);
  }

  private isBanned(bans: Map<string, number>, key: string, t: number): boolean {
    const until = bans.get(key);
    if (until === undefined) return false;
    if (t < until) return true;
    bans.delete(key);
    // A ban served starts a new failure window.
    const a = bans === this.addressBans ? this.addresses.get(key) : this.users.get(key);
    if (a) a.failures = 0;
    return false;
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
      failures: 0,
      windowStart: t,
    };
    this.remember(this.addresses, address, a);
    return a;
  }

  private remember<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    map.set(key, value);
    if (map.size > this.cfg.maxTracked) map.delete(map.keys().next().value as string);
  }
}
