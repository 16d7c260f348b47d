/**
 * The limits of one broker's connections, behind a few hook calls in
 * embedded.ts: at accept (banned or too frequent addresses), around login
 * (banned usernames, failures counted, the role's packet size) and at
 * subscribe (subscriptions per client). docs/security.md "Limits".
 */
import type { Socket } from "node:net";
import type { Client } from "aedes";
import type { LimitsConfig } from "../config/limits.js";
import { DEFAULT_LIMITS } from "../config/limits.js";
import type { Logger } from "../log.js";
import type { Counters } from "../stats.js";
import type { AuthResult } from "./access.js";
import { deviceMaxPacket, FrameGuard } from "./limits.js";
import { LoginGuard } from "./login-guard.js";

export type ConnectionLimits = Omit<LimitsConfig, "deviceRate">;
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = DEFAULT_LIMITS;

/** Counted under this "model" in linli_rejections_total: nobody has logged in yet. */
const BEFORE_LOGIN = "connection";

export class SocketLimits {
  readonly login: LoginGuard;
  private readonly frames = new WeakMap<Socket, FrameGuard>();
  private readonly subscriptions = new WeakMap<Client, Set<string>>();

  constructor(
    readonly config: ConnectionLimits,
    private readonly counters: Counters,
    private readonly log: Logger,
    now: () => number = Date.now,
  ) {
    this.login = new LoginGuard(
      config.login,
      {
        // Logged once per ban; every refusal during it is only counted.
        banned: (kind, key, until, failures) => {
          this.counters.reject("auth", "ban-started");
          this.log.warn(
            { [kind]: key, failures, until: new Date(until).toISOString() },
            `${kind} banned after repeated failed logins`,
          );
        },
      },
      now,
    );
  }

  /** At accept: false when the socket was closed (address banned or connecting too often). */
  accept(socket: Socket): boolean {
    const admission = this.login.admitConnection(addressOf(socket));
    if (admission !== "ok") {
      this.counters.reject(BEFORE_LOGIN, admission === "banned" ? "address-banned" : "address-rate-limited");
      socket.destroy();
      return false;
    }
    this.frames.set(
      socket,
      new FrameGuard(socket, this.config.maxConnectSize, (reason, announced, limit) => {
        const guard = this.frames.get(socket);
        this.counters.reject(guard?.role ?? BEFORE_LOGIN, reason);
        this.log.debug(
          { address: addressOf(socket), reason, announced, limit },
          "connection closed: packet too large",
        );
      }),
    );
    return true;
  }

  /** Before the password is checked: the reason it must be refused, or null. */
  loginBanned(socket: Socket, username: string | undefined): string | null {
    if (username === undefined) return null;
    if (this.login.admitLogin(addressOf(socket), username) === "ok") return null;
    this.counters.reject("auth", "username-banned");
    return "username-banned";
  }

  /** After the password was checked: failures counted; on success the role's packet size applies. */
  loginResult(socket: Socket, username: string | undefined, result: AuthResult): void {
    const address = addressOf(socket);
    if (!result.ok) {
      this.login.failed(address, username, result.reason === "bad-password");
      return;
    }
    if (username !== undefined) this.login.succeeded(address, username);
    const guard = this.frames.get(socket);
    if (!guard) return;
    const identity = result.identity;
    if (identity.kind === "device") {
      const d = identity.device;
      // Only MQTT devices hold broker credentials (AccessPolicy).
      const payload = d.profile.transport === "mqtt" ? d.profile.maxPayloadBytes : 0;
      guard.setLimit(deviceMaxPacket(d.model, d.id, payload), d.model);
    } else guard.setLimit(this.config.operatorMaxPacket, "operator");
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

function addressOf(socket: Socket): string {
  return socket.remoteAddress ?? "unknown";
}
