/** CONNACK return codes (MQTT 3.1.1 §3.2.2.3) and which one answers each refused login. */
import type { AuthResult } from "./access.js";

export const IDENTIFIER_REJECTED = 2;
export const SERVER_UNAVAILABLE = 3;
export const BAD_USERNAME_OR_PASSWORD = 4;
export const NOT_AUTHORIZED = 5;

/** The return code of a refused login. */
export function refusedLoginCode(reason: Extract<AuthResult, { ok: false }>["reason"]): number {
  if (reason === "anonymous") return NOT_AUTHORIZED;
  if (reason === "auth-busy") return SERVER_UNAVAILABLE;
  return BAD_USERNAME_OR_PASSWORD;
}
