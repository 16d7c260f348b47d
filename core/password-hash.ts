/**
 * The text form of a stored password hash (docs/security.md "Credentials"):
 *
 *     scrypt$<N>$<r>$<p>$<salt, base64>$<hash, base64>
 *
 * Only its shape lives here, so that every config field holding a password
 * (operators', and MQTT devices' from their profiles' binding) refuses a
 * malformed hash at load; hashing and verification are the broker's
 * (gateway/broker/credentials.ts).
 */

export const SCRYPT_PREFIX = "scrypt$";
/** Bytes of a stored hash. */
export const HASH_BYTES = 32;
/** Memory scrypt may use for one verification: N x r beyond it is refused. */
export const MAX_MEM = 64 * 1024 * 1024;

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** True if the string looks like a hash of ours (whether or not it is well formed). */
export function isHashed(s: string): boolean {
  return s.startsWith(SCRYPT_PREFIX);
}

/** Why a `scrypt$...` string is malformed, or null if it is well formed. */
export function hashProblem(s: string): string | null {
  const parts = s.split("$");
  if (parts.length !== 6) return "a password hash must look like scrypt$N$r$p$salt$hash (linli passwd)";
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  const N = Number(n);
  if (!Number.isInteger(N) || N < 2 || N > 2 ** 20 || (N & (N - 1)) !== 0)
    return "scrypt N must be a power of two from 2 to 2^20";
  const R = Number(r);
  const P = Number(p);
  if (!Number.isInteger(R) || R < 1 || R > 32) return "scrypt r must be an integer 1-32";
  if (!Number.isInteger(P) || P < 1 || P > 16) return "scrypt p must be an integer 1-16";
  if (128 * N * R > MAX_MEM) return "scrypt N x r needs more than 64 MiB";
  if (!B64.test(salt) || Buffer.from(salt, "base64").length < 8)
    return "salt must be base64, 8 bytes or more";
  if (!B64.test(hash) || Buffer.from(hash, "base64").length !== HASH_BYTES)
    return `hash must be base64 of ${HASH_BYTES} bytes`;
  return null;
}
