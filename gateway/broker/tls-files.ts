/**
 * TLS for the MQTT listeners (transports.ts) and the device listener (front/worker.ts): the
 * certificate files read into a secure context's options, the server options every listener
 * uses, and the names a verified client certificate carries (docs/security.md "TLS").
 */
import { readFileSync } from "node:fs";
import type { SecureContextOptions, TLSSocket } from "node:tls";

export interface TlsFiles {
  /** Server certificate chain (PEM). */
  cert: string;
  /** Its private key (PEM). */
  key: string;
  /** CA(s) whose client certificates are accepted in place of a password (PEM). */
  ca?: string;
  minVersion?: "TLSv1.2" | "TLSv1.3";
}

/**
 * A reconnect storm arrives all at once: Node's default accept backlog (511) dropped 18 % of
 * 10,000 simultaneous connects (bench/auth-storm.ts); the kernel caps it at somaxconn.
 */
export const LISTEN_BACKLOG = 4096;
/** A TLS handshake not completed in this time is dropped (a socket that never speaks costs nothing). */
export const HANDSHAKE_TIMEOUT_MS = 5_000;

/** The secure context options of a listener, read from its files now. Throws naming the file. */
export function readTlsFiles(t: TlsFiles): SecureContextOptions {
  const read = (what: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`cannot read TLS ${what} ${file}: ${(err as Error).message}`);
    }
  };
  return {
    cert: read("certificate", t.cert),
    key: read("key", t.key),
    ca: t.ca ? read("CA", t.ca) : undefined,
    minVersion: t.minVersion ?? "TLSv1.2",
  };
}

/** Subject CN and DNS subject alternative names of a verified client certificate. */
export function certificateNames(socket: TLSSocket): string[] {
  if (!socket.authorized) return [];
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return [];
  const names: string[] = [];
  const cn = cert.subject?.CN;
  if (typeof cn === "string") names.push(cn);
  else if (Array.isArray(cn)) names.push(...cn);
  for (const part of (cert.subjectaltname ?? "").split(",")) {
    const m = /^\s*DNS:(.+)$/.exec(part);
    if (m) names.push((m[1] as string).trim());
  }
  return names;
}

/** A TLS listener's server options from its files' contents. */
export function tlsServerOptionsOf(tls: SecureContextOptions) {
  return {
    ...tls,
    // Asked for only when a CA is configured; not required (password logins stay possible).
    requestCert: tls.ca !== undefined,
    rejectUnauthorized: false,
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
  };
}
