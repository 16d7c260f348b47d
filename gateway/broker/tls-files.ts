/**
 * TLS for the MQTT listeners (transports.ts) and the device listener (front/worker.ts): the
 * certificate files read into a secure context's options, the server options every listener
 * uses, and the names a verified client certificate carries (docs/security.md "TLS").
 */
import { readFileSync } from "node:fs";
import type { Socket } from "node:net";
import type { SecureContextOptions, TLSSocket, Server as TlsServer } from "node:tls";
import { tcpSocketOf } from "../accept-gate.js";
import type { RateLimitedLog } from "../log.js";

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

/** Counted under `connection` in linli_rejections_total (docs/metrics.md): nobody has logged in yet. */
export const TLS_HANDSHAKE = "tls-handshake";

/**
 * Calls `failed` with the error code and the peer's address for each handshake that fails on
 * `server` (a TLS or HTTPS server): an expired or unknown client certificate, a client that does
 * not trust ours, plain TCP into TLS, a handshake timeout. A client that does not trust our
 * certificate just hangs up (ECONNRESET), leaving the TLS socket without an address: the TCP
 * socket under it keeps the one read here at accept.
 */
export function onHandshakeFailure(server: TlsServer, failed: (code: string, address: string) => void): void {
  server.on("connection", rememberAddress);
  server.on("tlsClientError", (err: Error & { code?: string }, socket: TLSSocket) => {
    failed(err.code ?? err.message, tcpSocketOf(socket).remoteAddress ?? socket.remoteAddress ?? "unknown");
  });
}

function rememberAddress(socket: Socket): void {
  // Node caches the peer's name on the socket once read.
  void socket.remoteAddress;
}

/** The line for a failed handshake: one per address and minute (a device retrying every few seconds). */
export function warnHandshakeFailed(
  rateLog: RateLimitedLog,
  address: string,
  code: string,
  listener: string,
): void {
  rateLog.warn(
    address,
    TLS_HANDSHAKE,
    { who: address, reason: TLS_HANDSHAKE, code, listener },
    "TLS handshake failed: connection closed (a client certificate expired or from another CA, a client that does not trust the gateway's certificate, or not TLS)",
  );
}
