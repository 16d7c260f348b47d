/**
 * Stored passwords and their verification (docs/security.md "Credentials").
 *
 * A password in the config is either plain text (still accepted, warned about
 * at start) or a salted scrypt hash in a self-describing string:
 *
 *     scrypt$<N>$<r>$<p>$<salt, base64>$<hash, base64>
 *
 * e.g. `scrypt$16384$8$1$3q2+7w...$Zm9v...` (`linli passwd` prints one). N, r
 * and p are scrypt's cost parameters (RFC 7914); the hash is 32 bytes.
 *
 * Verification policy (a reconnect storm must not stall the site):
 *   - scrypt runs asynchronously on libuv's thread pool, at most
 *     MAX_IN_FLIGHT at once, so pool threads stay free for the journal's
 *     fdatasync and file reads; further logins wait in a FIFO bounded at
 *     MAX_QUEUED (beyond it a login is refused as "server unavailable",
 *     counted `auth-busy`, and the client retries). A login whose connection
 *     closed while it waited (the client gave up) is dropped unverified.
 *   - A successful verification is remembered for CACHE_TTL_MS, keyed by an
 *     HMAC (random per-process key) of the stored hash and the password, at
 *     most CACHE_MAX entries (oldest first out): a device reconnecting after a
 *     network blip costs one HMAC, not one scrypt. Failures are never cached.
 *     The key changes with the stored hash, so a rotated password never hits
 *     an old entry.
 *   - Comparison is constant-time (timingSafeEqual) for hashes and plain text.
 */
import { createHash, createHmac, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { HASH_BYTES, hashProblem, isHashed, MAX_MEM, SCRYPT_PREFIX } from "../../core/index.js";

// The hash's text form is core's (config fields check it); re-exported for the broker's users.
export { hashProblem, isHashed, SCRYPT_PREFIX };

const SALT_BYTES = 16;

/** Default cost: N = 2^14, r = 8, p = 1 (16 MiB, ~35 ms on one core of a small box). */
export const DEFAULT_LOG2_N = 14;

export type StoredSecret =
  | { kind: "plain"; value: Buffer }
  | { kind: "scrypt"; N: number; r: number; p: number; salt: Buffer; hash: Buffer; text: string };

/** The config's string as a stored secret (a malformed hash is a config error before this). */
export function parseSecret(s: string): StoredSecret {
  if (!isHashed(s)) return { kind: "plain", value: Buffer.from(s, "utf8") };
  const problem = hashProblem(s);
  if (problem) throw new RangeError(problem);
  const [, n, r, p, salt, hash] = s.split("$") as [string, string, string, string, string, string];
  return {
    kind: "scrypt",
    N: Number(n),
    r: Number(r),
    p: Number(p),
    salt: Buffer.from(salt, "base64"),
    hash: Buffer.from(hash, "base64"),
    text: s,
  };
}

function scryptAsync(password: Buffer, salt: Buffer, N: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, HASH_BYTES, { N, r, p, maxmem: MAX_MEM }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

/** A new hash of `password` for the config (`linli passwd`). */
export async function hashPassword(
  password: string,
  opts: { log2N?: number; r?: number; p?: number } = {},
): Promise<string> {
  const N = 2 ** (opts.log2N ?? DEFAULT_LOG2_N);
  const r = opts.r ?? 8;
  const p = opts.p ?? 1;
  const salt = randomBytes(SALT_BYTES);
  const hash = await scryptAsync(Buffer.from(password, "utf8"), salt, N, r, p);
  return `${SCRYPT_PREFIX}${N}$${r}$${p}$${salt.toString("base64")}$${hash.toString("base64")}`;
}

/**
 * What an operator's saved persistent sessions keep of the credentials they were saved under
 * (gateway/broker/sessions.ts): sessions saved under other credentials are not handed over. Never
 * the password: for a hash, a SHA-256 of the config's hash text (salted and slow already); for
 * plain text, scrypt at `linli passwd`'s cost salted with the account's name, so that the journal
 * offers a guesser no cheaper test than a hash in the config would. `secret` null: no password.
 */
export async function credentialFingerprint(name: string, secret: string | null): Promise<string> {
  if (secret === null) return "none";
  if (isHashed(secret)) return `h:${createHash("sha256").update(secret).digest("base64")}`;
  const salt = createHash("sha256").update("linli-session-owner\0").update(name).digest();
  const key = await scryptAsync(Buffer.from(secret, "utf8"), salt, 2 ** DEFAULT_LOG2_N, 8, 1);
  return `p:${key.toString("base64")}`;
}

function sameBytes(expected: Buffer, given: Buffer): boolean {
  return given.length === expected.length && timingSafeEqual(expected, given);
}

/** Whether `given` hashes to the stored scrypt secret (one scrypt; no queue, no cache). */
export async function scryptMatches(
  stored: Extract<StoredSecret, { kind: "scrypt" }>,
  given: Buffer,
): Promise<boolean> {
  return sameBytes(stored.hash, await scryptAsync(given, stored.salt, stored.N, stored.r, stored.p));
}

export const MAX_IN_FLIGHT = 2;
export const MAX_QUEUED = 4096;
export const CACHE_TTL_MS = 15 * 60_000;
export const CACHE_MAX = 65_536;

export type Verdict = "ok" | "bad-password" | "busy" | "gone";

export interface VerifierOptions {
  maxInFlight?: number;
  maxQueued?: number;
  cacheTtlMs?: number;
  cacheMax?: number;
  /** Monotonic ms (the cache's TTL). */
  now?: () => number;
}

export class PasswordVerifier {
  private readonly cacheKey = randomBytes(32);
  /** HMAC -> expiry; a Map keeps insertion order, so the first entry is the oldest. */
  private readonly cache = new Map<string, number>();
  private readonly waiting: (() => void)[] = [];
  private inFlight = 0;
  private readonly maxInFlight: number;
  private readonly maxQueued: number;
  private readonly ttl: number;
  private readonly cacheMax: number;
  private readonly now: () => number;
  readonly stats = { scrypt: 0, cacheHits: 0, busy: 0, gone: 0 };

  constructor(opts: VerifierOptions = {}) {
    this.maxInFlight = opts.maxInFlight ?? MAX_IN_FLIGHT;
    this.maxQueued = opts.maxQueued ?? MAX_QUEUED;
    this.ttl = opts.cacheTtlMs ?? CACHE_TTL_MS;
    this.cacheMax = opts.cacheMax ?? CACHE_MAX;
    // A TTL is elapsed time: a step of the wall clock back must not keep a success cached for a day.
    this.now = opts.now ?? (() => performance.now());
  }

  /**
   * Whether `given` is the stored secret. Never rejects. `gone()`: the login was
   * abandoned while it waited (its connection closed): "gone", no scrypt spent on it.
   */
  async verify(stored: StoredSecret, given: Buffer | undefined, gone?: () => boolean): Promise<Verdict> {
    if (!given) return "bad-password";
    if (stored.kind === "plain") return sameBytes(stored.value, given) ? "ok" : "bad-password";
    const key = createHmac("sha256", this.cacheKey)
      .update(stored.text)
      .update("\0")
      .update(given)
      .digest("base64");
    const expires = this.cache.get(key);
    if (expires !== undefined) {
      if (expires > this.now()) {
        this.stats.cacheHits++;
        return "ok";
      }
      this.cache.delete(key);
    }
    if (this.inFlight >= this.maxInFlight) {
      if (this.waiting.length >= this.maxQueued) {
        this.stats.busy++;
        return "busy";
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.inFlight++;
    try {
      if (gone?.()) {
        this.stats.gone++;
        return "gone";
      }
      this.stats.scrypt++;
      if (!(await scryptMatches(stored, given))) return "bad-password";
      this.remember(key);
      return "ok";
    } catch {
      return "bad-password";
    } finally {
      // The slot passes to the next waiter (inFlight unchanged), or is freed.
      const next = this.waiting.shift();
      if (next) next();
      else this.inFlight--;
    }
  }

  private remember(key: string): void {
    this.cache.delete(key);
    this.cache.set(key, this.now() + this.ttl);
    while (this.cache.size > this.cacheMax) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
  }
}
