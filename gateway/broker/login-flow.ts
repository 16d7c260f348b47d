/**
 * The decision on a login, the same on every way in: aedes' listeners (embedded.ts), the
 * console's HTTP login (embedded.ts operatorLogin) and the device listener
 * (front/device-front.ts). In order: a login ban in the account's scope refuses it before the
 * password is looked at (login-guard.ts); the credentials are checked; the outcome counts
 * towards the bans; a failure is counted and logged; the identity must be of the kind the way in
 * serves, and own the client id it uses (client-ids.ts). Each way in maps the decision to its
 * reply (a CONNACK return code, an HTTP status) and keeps what is its own (sessions, takeovers).
 */
import type { RateLimitedLog } from "../log.js";
import type { Counters } from "../stats.js";
import type { AccessPolicy, Identity } from "./access.js";
import { mayUseClientId } from "./client-ids.js";
import {
  BAD_USERNAME_OR_PASSWORD,
  IDENTIFIER_REJECTED,
  NOT_AUTHORIZED,
  refusedLoginCode,
} from "./connack.js";
import type { SocketLimits } from "./connection-limits.js";
import type { Claimant } from "./login-guard.js";

export interface LoginDeps {
  limits: SocketLimits;
  policy: AccessPolicy;
  counters: Counters;
  rateLog: RateLimitedLog;
}

export interface LoginRequest {
  /** The source address the bans count (a WebSocket's: its TCP socket's). */
  address: string;
  username: string | undefined;
  password: Buffer | undefined;
  /** Names of a client certificate the listener's CA verified; else empty. */
  certNames: readonly string[];
  /** The MQTT client id, which must be the identity's own; null where there is none (the console). */
  clientId: string | null;
  /** The connection closed meanwhile: no password work is spent on it, and nobody is answered. */
  gone: () => boolean;
  /** The bans' scope; by default the account the username names (AccessPolicy.claimant). */
  scope?: Claimant;
  /**
   * Only this kind logs in here: the other kind's right credentials are refused as `reason`
   * (not a guess: no failure counted), and counted as a success towards the bans if
   * `recordSuccess`.
   */
  only?: { kind: Identity["kind"]; reason: string; recordSuccess: boolean };
  /** What the refusal's log line carries besides username, address, client id and reason. */
  logFields: Readonly<Record<string, unknown>>;
  /** The refusal's log message; "connection refused" by default. */
  logMessage?: string;
}

export type LoginDecision =
  | { ok: true; identity: Identity }
  | {
      ok: false;
      /** Counted (where it is not a ban's refusal, counted by the bans) and logged; "gone" neither. */
      reason: string;
      /** The CONNACK return code that answers it. */
      returnCode: number;
      /** What is left of the login ban (ms) that refused it, if one did. */
      bannedForMs: number | null;
    };

const GONE: LoginDecision = { ok: false, reason: "gone", returnCode: 0, bannedForMs: null };

/**
 * Decides a login. The ban is checked before the first await (at once, as the CONNECT is read).
 * An error of the credentials' check itself is thrown: each way in answers it as it can.
 */
export async function decideLogin(deps: LoginDeps, req: LoginRequest): Promise<LoginDecision> {
  const { limits, policy, counters, rateLog } = deps;
  const refuse = (reason: string, returnCode: number, counted: string | null, key?: string) => {
    if (counted !== null) counters.reject(counted, reason);
    const username = req.username;
    rateLog.warn(
      key ?? username ?? "(anonymous)",
      reason,
      {
        username,
        address: req.address,
        ...(req.clientId === null ? {} : { clientId: req.clientId }),
        reason,
        ...req.logFields,
      },
      req.logMessage ?? "connection refused",
    );
    return { ok: false, reason, returnCode, bannedForMs: null } as const;
  };
  const claimant = req.scope ?? policy.claimant(req.username, req.certNames);
  // Counted by the bans themselves.
  const ban = limits.loginBannedAt(req.address, req.username, claimant);
  if (ban !== null)
    return { ...refuse(`${ban.kind}-banned`, BAD_USERNAME_OR_PASSWORD, null), bannedForMs: ban.ms };
  const result = await policy.authenticate(req.username, req.password, req.certNames, req.gone);
  if ((!result.ok && result.reason === "gone") || req.gone()) return GONE;
  const wrongKind = result.ok && req.only !== undefined && result.identity.kind !== req.only.kind;
  if (!wrongKind || req.only?.recordSuccess)
    limits.loginResultAt(req.address, req.username, claimant, result);
  if (!result.ok) {
    const counted = result.reason === "unknown-device" ? "unknown" : "auth";
    return refuse(result.reason, refusedLoginCode(result.reason), counted);
  }
  const identity = result.identity;
  const model = identity.kind === "device" ? identity.device.model : "operator";
  const name = identity.kind === "device" ? identity.device.id : identity.name;
  if (wrongKind) return refuse((req.only as { reason: string }).reason, NOT_AUTHORIZED, model);
  // Client ids belong to their owner: any other login using a device's or an operator's id is
  // refused before a takeover would close the owner's connection.
  if (req.clientId !== null && !mayUseClientId(policy.registry, identity, req.clientId))
    return refuse("client-id-not-owned", IDENTIFIER_REJECTED, model, name);
  return { ok: true, identity };
}
