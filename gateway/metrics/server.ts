/**
 * The metrics and health HTTP server (node:http, no framework), bound to
 * `metrics.host:metrics.port`:
 *
 *   GET /metrics   Prometheus text exposition (this gateway's metrics + process metrics)
 *   GET /healthz   200 "ok" while the process runs (liveness)
 *   GET /readyz    200 "ready" when the broker is listening and the config is loaded ("ready: NOTE"
 *                  on the last good configuration, its site file refused);
 *                  503 with the reason otherwise (e.g. "shutting down")
 *   other paths    404; other methods 405 (HEAD is answered like GET, without a body)
 *
 * Bounded: request bodies are never read (a request with one is refused and
 * the connection closed), headers are capped in size and time, and every
 * accepted socket has TCP_NODELAY.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

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

export class MetricsServer {
  private constructor(
    private readonly server: Server,
    readonly address: MetricsAddress,
  ) {}

  static async start(opts: MetricsServerOptions): Promise<MetricsServer> {
    const server = createServer(
      { maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: REQUEST_TIMEOUT_MS },
      (req, res) => handle(req, res, opts),
    );
    server.headersTimeout = HEADERS_TIMEOUT_MS;
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    server.maxRequestsPerSocket = 1000;
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
    return new MetricsServer(server, { host: a.address, port: a.port });
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
  switch (path) {
    case "/metrics":
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
      if (reason === null) send(res, 200, note === null ? "ready\n" : `ready: ${note}\n`);
      else send(res, 503, `not ready: ${reason}\n`);
      return;
    }
    default:
      send(res, 404, "not found\n");
  }
}
