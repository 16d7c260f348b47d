/**
 * Who may read /metrics (`metrics.auth`, docs/metrics.md "Protecting /metrics"): a bearer token
 * or a basic-auth username and password, as Prometheus sends them (`authorization:
 * credentials_file` / `basic_auth: password_file` in a scrape config). The secret is read from a
 * file (never written in the site file, never logged), at start and again at `linli reload`.
 *
 * Comparison is constant-time: both sides are hashed with SHA-256 and the digests compared with
 * timingSafeEqual, so neither the secret's length nor how many leading bytes a guess got right
 * shows in the answer's timing.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";

export type MetricsAuthConfig =
  | { type: "bearer"; tokenFile: string }
  | { type: "basic"; username: string; passwordFile: string };

/**
 * Shortest secret accepted: 16 characters of `openssl rand -hex 32` are 64 bits, beyond online
 * guessing; a person's word is not (nothing slows guesses here but the network).
 */
export const MIN_SECRET_LENGTH = 16;

const digest = (s: string | Buffer) => createHash("sha256").update(s).digest();

/** Reads a secret file as Prometheus does (surrounding whitespace trimmed). Throws naming the file, never the content. */
export function readSecretFile(path: string, field: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`${field}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  const secret = text.trim();
  if (secret.length < MIN_SECRET_LENGTH)
    throw new Error(
      `${field}: the secret in ${path} is ${secret.length === 0 ? "empty" : `shorter than ${MIN_SECRET_LENGTH} characters`} (make one with: openssl rand -hex 32 > ${path})`,
    );
  return secret;
}

/** The credentials of `metrics.auth`, read from their file; `reload()` re-reads it. */
export class MetricsCredentials {
  /** SHA-256 of the whole expected Authorization header value. */
  private expected: Buffer;

  constructor(readonly config: MetricsAuthConfig) {
    this.expected = MetricsCredentials.expectedDigest(config);
  }

  /** The challenge sent with a 401 (RFC 6750, RFC 7617). */
  get challenge(): string {
    return this.config.type === "bearer"
      ? 'Bearer realm="linli metrics"'
      : 'Basic realm="linli metrics", charset="UTF-8"';
  }

  /** Re-reads the secret file; throws naming the file and keeps the current secret if it cannot. */
  reload(): void {
    this.expected = MetricsCredentials.expectedDigest(this.config);
  }

  /** Whether an Authorization header value carries the configured credentials. */
  authorizes(header: string | undefined): boolean {
    if (header === undefined || header.length > 4096) return false;
    const presented = this.normalise(header);
    return timingSafeEqual(digest(presented ?? ""), this.expected) && presented !== null;
  }

  /** The header in the form `expected` was built from, or null if it is not of the configured scheme. */
  private normalise(header: string): string | null {
    const space = header.indexOf(" ");
    if (space === -1) return null;
    const scheme = header.slice(0, space).toLowerCase(); // schemes are case-insensitive (RFC 9110 11.1)
    const value = header.slice(space + 1).trim();
    if (this.config.type === "bearer") return scheme === "bearer" ? `bearer ${value}` : null;
    if (scheme !== "basic") return null;
    return `basic ${Buffer.from(value, "base64").toString("utf8")}`;
  }

  private static expectedDigest(c: MetricsAuthConfig): Buffer {
    return c.type === "bearer"
      ? digest(`bearer ${readSecretFile(c.tokenFile, "metrics.auth.tokenFile")}`)
      : digest(`basic ${c.username}:${readSecretFile(c.passwordFile, "metrics.auth.passwordFile")}`);
  }
}
