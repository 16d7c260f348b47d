/**
 * The metrics and health HTTP server (node:http, no framework), bound to
 * `metrics.host:metrics.port`:
 *
 *   GET /metrics   Prometheus text exposition (this gateway's metrics + process metrics);
 *                  with `auth`, 401 without its credentials
 *   GET /healthz   200 "ok" while the process runs (liveness)
 *   GET /readyz    200 "ready" when the broker is listening and the config is loaded ("ready: NOTE"
 *                  on the last good configuration, its site file refused);
 *                  503 with the reason otherwise (e.g. "shutting down")
 *                  With `auth`, the health checks stay open (systemd, load balancers and probes send
 *                  no credentials) and say their note or reason to authorised requests only: it
 *                  names files and the journal's state.
 *   other paths    404; other methods 405 (HEAD is answered like GET, without a body)
 *
 * Bounded: request bodies are never read (a request with one is refused and
 * the connection closed), headers are capped in size and time, sockets in
 * number and idle time (http-guard.ts), and every accepted socket has TCP_NODELAY.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { SecureContextOptions } from "node:tls";
import { readTlsFiles, type TlsFiles, tlsServerOptionsOf } from "../broker/tls-files.js";
import { CONNECTIONS_CHECKING_INTERVAL_MS, guardHttpServer, type HttpRefusal } from "../http-guard.js";
import type { MetricsCredentials } from "./auth.js";

export interface MetricsServerOptions {
  host: string;
  port: number;
  /** The exposition and its content type. */
  metrics: { render(): Promise<string>; readonly contentType: string };
  /** null when ready, else why not (shown in the 503 body). */
  notReadyReason: () => string | null;
  /** Said after "ready" (still 200): serving, but something to know (the last good configuration). */
  readyNote?: () => string | null;
  /** Called when rendering /metrics fails (the scrape gets a 500). */
  onError?: (err: unknown) => void;
  /** Credentials /metrics asks for (`metrics.auth`); none: open. */
  auth?: MetricsCredentials;
  /** Called for each /metrics request refused for its credentials (401), with the peer's address. */
  onUnauthorized?: (address: string) => void;
  /** HTTPS (`metrics.tls`). */
  tls?: Omit<TlsFiles, "ca">;
  /**
   * A socket closed at accept (over its address's share), or evicted to make room for a new one
   * when METRICS_MAX_CONNECTIONS are open (http-guard.ts).
   */
  onConnectionRefused?: (address: string, why: HttpRefusal) => void;
  /**
   * With `tls`, each TCP socket at accept, before its handshake: the broker's per-address
   * connection rate (false: refused, closed and counted). Not its login bans: no login the bans
   * guard is checked here, and a scraper behind the same NAT as a banned desk must keep its
   * scrapes (docs/security.md "Login bans"). Unused without TLS (an accept costs no handshake).
   */
  admitConnection?: (socket: Socket) => boolean;
}

export interface MetricsAddress {
  host: string;
  port: number;
}

/** Bytes of request headers accepted (Node's default is 16 KiB; a scrape sends a few hundred). */
const MAX_HEADER_BYTES = 8 * 1024;
/** A client must send its headers within this (slowloris). */
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** Sockets open at once: Prometheus keeps one or two, probes a few more. */
export const METRICS_MAX_CONNECTIONS = 64;
export const METRICS_MAX_PER_ADDRESS = 16;

export class MetricsServer {
  private constructor(
    private readonly server: Server,
    readonly address: MetricsAddress,
    private readonly opts: MetricsServerOptions,
  ) {}

  static async start(opts: MetricsServerOptions): Promise<MetricsServer> {
    const httpOptions = {
      maxHeaderSize: MAX_HEADER_BYTES,
      requestTimeout: REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
    };
    const onRequest = (req: IncomingMessage, res: ServerResponse) => handle(req, res, opts);
    const server: Server = opts.tls
      ? createHttpsServer({ ...httpOptions, ...tlsServerOptionsOf(readTlsFiles(opts.tls)) }, onRequest)
      : createServer(httpOptions, onRequest);
    server.headersTimeout = HEADERS_TIMEOUT_MS;
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    server.maxRequestsPerSocket = 1000;
    guardHttpServer(server, {
      maxConnections: METRICS_MAX_CONNECTIONS,
      perAddress: METRICS_MAX_PER_ADDRESS,
      idleTimeoutMs: REQUEST_TIMEOUT_MS,
      // A scraper holds one or two sockets: a few hosts at their share evict their own.
      overflow: "evict",
      admit: opts.tls ? opts.admitConnection : undefined,
      onRefused: opts.onConnectionRefused,
    });
    server.on("connection", (s) => s.setNoDelay(true));
    server.on("clientError", (_err, socket) => {
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
      else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.port, opts.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const a = server.address() as AddressInfo;
    return new MetricsServer(server, { host: a.address, port: a.port }, opts);
  }

  /**
   * Re-reads the certificate and key (reload): new handshakes use them, open connections keep
   * theirs. Throws naming the file, keeping the current ones; false without TLS.
   */
  reloadCertificates(): boolean {
    if (!this.opts.tls) return false;
    const options: SecureContextOptions = readTlsFiles(this.opts.tls);
    (this.server as unknown as { setSecureContext(o: SecureContextOptions): void }).setSecureContext(options);
    return true;
  }

  /** Re-reads `metrics.auth`'s secret file (reload). Throws naming the file, keeping the current secret; false without auth. */
  reloadCredentials(): boolean {
    if (!this.opts.auth) return false;
    this.opts.auth.reload();
    return true;
  }

  /** Stops accepting connections, closes idle ones, lets requests in flight finish. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }
}

function send(res: ServerResponse, status: number, body: string, contentType = "text/plain; charset=utf-8") {
  res.statusCode = status;
  res.setHeader("Content-Type", contentType);
  res.setHeader("Content-Length", Buffer.byteLength(body));
  res.setHeader("Cache-Control", "no-store");
  res.end(res.req.method === "HEAD" ? undefined : body);
}

function handle(req: IncomingMessage, res: ServerResponse, opts: MetricsServerOptions): void {
  // No request bodies: a GET with one, or any other method, is answered and the connection closed
  // without reading what follows.
  const hasBody =
    req.headers["transfer-encoding"] !== undefined ||
    (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0");
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("Allow", "GET, HEAD");
    res.shouldKeepAlive = false;
    send(res, 405, "method not allowed\n");
    return;
  }
  if (hasBody) {
    res.shouldKeepAlive = false;
    send(res, 400, "request bodies are not accepted\n");
    return;
  }
  const q = req.url?.indexOf("?") ?? -1;
  const path = q === -1 ? req.url : req.url?.slice(0, q);
  const authorised = opts.auth === undefined || opts.auth.authorizes(req.headers.authorization);
  switch (path) {
    case "/metrics":
      if (!authorised) {
        opts.onUnauthorized?.(req.socket.remoteAddress ?? "unknown");
        res.setHeader("WWW-Authenticate", (opts.auth as MetricsCredentials).challenge);
        send(res, 401, "unauthorized: metrics.auth credentials required\n");
        return;
      }
      opts.metrics.render().then(
        (text) => send(res, 200, text, opts.metrics.contentType),
        (err: unknown) => {
          opts.onError?.(err);
          send(res, 500, "metrics collection failed\n");
        },
      );
      return;
    case "/healthz":
      send(res, 200, "ok\n");
      return;
    case "/readyz": {
      const reason = opts.notReadyReason();
      const note = reason === null ? (opts.readyNote?.() ?? null) : null;
      if (!authorised) send(res, reason === null ? 200 : 503, reason === null ? "ready\n" : "not ready\n");
      else if (reason === null) send(res, 200, note === null ? "ready\n" : `ready: ${note}\n`);
      else send(res, 503, `not ready: ${reason}\n`);
      return;
    }
    default:
      send(res, 404, "not found\n");
  }
}
