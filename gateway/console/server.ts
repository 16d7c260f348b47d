/**
 * The operators' console: a page in the browser, served by the gateway on its
 * own HTTP listener (`console.host:console.port`, off unless configured).
 *
 *   GET  /                 the page (gateway/console/public/, no build step)
 *   GET  /app.js, ...      its scripts and style
 *   GET  /vendor/mqtt.min.js  mqtt.js's browser bundle, from node_modules: nothing is fetched from outside
 *   GET  /api/login-status whether logins from the asking address are paused (a login ban), until HH:MM
 *   GET  /api/site         the site, its households and devices, for the operator's eyes only
 *                          (HTTP Basic with the operator's MQTT username and password; 401 otherwise,
 *                          429 with Retry-After while a login ban refuses the address)
 *   GET  /mqtt (Upgrade)   MQTT over WebSocket into the embedded broker
 *
 * The page is live over MQTT over WebSocket with the operator's own login: the
 * broker authenticates it, its ACL decides what it may read and request, and
 * its requests take the same path as any console's (docs/topics.md). The server
 * itself holds no alert state and no session: a gateway restart or a network
 * cut is seen by the page as a closed socket, and it rebuilds itself from the
 * retained topics when it reconnects.
 *
 * Bounded: no request body is ever read, headers are capped in size and time,
 * WebSocket frames are capped (an operator's request is a few hundred bytes).
 */
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createRequire } from "node:module";
import type { AddressInfo, Socket } from "node:net";
import path from "node:path";
import type { Duplex } from "node:stream";
import type { SecureContextOptions } from "node:tls";
import { fileURLToPath } from "node:url";
import type { WebSocketServer } from "ws";
import { readTlsFiles, type TlsFiles, tlsServerOptionsOf } from "../broker/tls-files.js";
import { foreignOrigin } from "../broker/transports.js";
import { CONNECTIONS_CHECKING_INTERVAL_MS, guardHttpServer, type HttpRefusal } from "../http-guard.js";
import type { Logger } from "../log.js";
import { type SlotRefusal, WebSocketSlots } from "./ws-slots.js";

export interface ConsoleAddress {
  host: string;
  port: number;
}

/** What the page shows about the site; built by the gateway from its config on each request (reloads apply). */
export interface ConsoleSiteInfo {
  site: { id: string; name: string | null; locale: string; timezone: string };
  households: Array<Record<string, unknown>>;
  devices: Array<Record<string, unknown>>;
  /** Alert codes of the site's YAML device profiles and their titles (the built-in ones the page knows). */
  codeNames: Record<string, string>;
  /** alerts.shelveMax: the page offers no longer shelving. */
  shelveMaxMs: number;
  /**
   * Who logged in: their role and the actions it allows (docs/security.md "Operator roles"); the
   * page offers no other. The gateway refuses the others whatever a page sends (`forbidden`).
   */
  operator?: { name: string; role: string; actions: string[] };
}

/** `busy`: the password could not be checked now (auth-busy), which is no answer about it. */
export type ConsoleLogin = { ok: true } | { ok: false; bannedForMs: number | null; busy?: boolean };

export interface ConsoleServerOptions {
  host: string;
  port: number;
  /**
   * Whether this is an operator's username and password: the broker's own check, with its
   * bans and failure counting for the requesting socket (a guessed password is a guessed password).
   * `bannedForMs` (what is left of it, ms): refused by a login ban, not for the password. A
   * duration, not an end on the wall clock: a step of the clock must not move Retry-After.
   */
  authenticateOperator(username: string, password: Buffer, socket: Socket): Promise<ConsoleLogin>;
  /**
   * What is left (ms) of the login ban on operator logins from `socket`'s address, or null:
   * `GET /api/login-status`, so the page says so before anyone types a password. Not a login.
   */
  loginPause?(socket: Socket): number | null;
  /** The site's time zone (site.timezone; none: the box's): a ban's end is said in the operators' local time. */
  timeZone?(): string | undefined;
  /** What the page shows, for the operator logged in as `username`. */
  siteInfo(username: string): ConsoleSiteInfo;
  /**
   * Hands a WebSocket's byte stream to the MQTT broker as a new client connection; the broker
   * calls `operatorLoggedIn` once the connection has logged in as an operator.
   */
  attachMqtt(stream: Duplex, socket: Socket, operatorLoggedIn: () => void): void;
  log: Logger;
  /**
   * HTTPS (and so wss for /mqtt): the console's logins carry operators' passwords, which plain
   * HTTP hands to anyone on the LAN. No client certificates here (`ca` is not taken).
   */
  tls?: Omit<TlsFiles, "ca">;
  /**
   * A socket closed at accept (over its address's share; over CONSOLE_MAX_CONNECTIONS with every
   * socket a logged-in operator's), or evicted to make room for a new one (http-guard.ts).
   */
  onConnectionRefused?: (address: string, why: HttpRefusal) => void;
  /**
   * With `tls`, each TCP socket at accept, before its handshake: the broker's per-address
   * connection rate (false: refused, closed and counted). Not its login bans: those refuse logins,
   * and the page must load to say so. Unused without TLS (a page load costs no more than the refusal).
   */
  admitConnection?: (socket: Socket) => boolean;
  /**
   * A WebSocket refused (its address holds its most not-logged-in sockets, or every slot is a
   * logged-in operator's) or closed before login to make room for a newer one (ws-slots.ts).
   */
  onWebSocketRefused?: (address: string, why: SlotRefusal | "evicted") => void;
  /**
   * Internal, tests only: the sockets held in all and per address (default CONSOLE_MAX_CONNECTIONS
   * and CONSOLE_MAX_PER_ADDRESS): a test of the eviction order fills a smaller server well within
   * the headers timeout on a slow machine.
   */
  connections?: { max: number; perAddress: number };
}

const MAX_HEADER_BYTES = 8 * 1024;
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** An MQTT packet over the console's WebSocket: operator requests are small, the broker caps the rest. */
const MAX_WS_FRAME_BYTES = 64 * 1024;
/**
 * WebSockets (ws-slots.ts): a console per desk and tablet, with room. At most
 * WS_MAX_UNAUTHENTICATED of them not logged in yet (the rest is the operators' reserve), and
 * WS_MAX_UNAUTHENTICATED_PER_ADDRESS from one address (a NAT's tablets reconnecting at once wait
 * a retry, a login takes milliseconds).
 */
export const WS_MAX_CLIENTS = 256;
export const WS_MAX_UNAUTHENTICATED = 64;
export const WS_MAX_UNAUTHENTICATED_PER_ADDRESS = 16;
/**
 * Sockets open at once (WebSockets and page loads): room for every console beside WS_MAX_CLIENTS.
 * Per address: the desks and tablets behind one NAT (a Wi-Fi) keep one WebSocket per tab and a
 * few page connections while loading. When all are taken, a new socket evicts the oldest one not
 * logged in of the address holding the most (http-guard.ts): eight hosts at their share fill the
 * total, and an operator's page load must still get in.
 */
export const CONSOLE_MAX_CONNECTIONS = 512;
export const CONSOLE_MAX_PER_ADDRESS = 64;

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".json": "application/json; charset=utf-8",
};

/** The page's files: beside this module in the sources, or in the source tree when run from dist/. */
function publicDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const beside = path.join(here, "public");
  if (existsSync(beside)) return beside;
  return path.resolve(here, "../../../gateway/console/public");
}

/** ws is loaded when the console starts: a gateway without a console never loads it. */
const loadWs = (): typeof import("ws") => createRequire(import.meta.url)("ws");

function mqttBundle(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve("mqtt/package.json")), "dist", "mqtt.min.js");
}

/** The files the server hands out, by URL path: a fixed list, so no path from a request reaches the file system. */
function staticFiles(): Map<string, string> {
  const dir = publicDir();
  const files = new Map<string, string>([
    ["/", path.join(dir, "index.html")],
    ["/index.html", path.join(dir, "index.html")],
    ["/app.js", path.join(dir, "app.js")],
    ["/i18n.js", path.join(dir, "i18n.js")],
    ["/watch.js", path.join(dir, "watch.js")],
    ["/sync.js", path.join(dir, "sync.js")],
    ["/style.css", path.join(dir, "style.css")],
    ["/vendor/mqtt.min.js", mqttBundle()],
  ]);
  for (const [url, file] of files)
    if (!existsSync(file)) throw new Error(`console: ${url} missing (${file})`);
  return files;
}

/** `Authorization: Basic base64(user:password)` → [user, password], or null. */
export function basicCredentials(header: string | undefined): [string, Buffer] | null {
  if (!header?.startsWith("Basic ")) return null;
  const raw = Buffer.from(header.slice(6).trim(), "base64");
  const colon = raw.indexOf(0x3a);
  if (colon <= 0) return null;
  return [raw.subarray(0, colon).toString("utf8"), raw.subarray(colon + 1)];
}

export class ConsoleServer {
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly wss: WebSocketServer,
    readonly address: ConsoleAddress,
    private readonly tls: Omit<TlsFiles, "ca"> | undefined,
  ) {}

  static async start(opts: ConsoleServerOptions): Promise<ConsoleServer> {
    const files = staticFiles();
    const { WebSocketServer, createWebSocketStream } = loadWs();
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_WS_FRAME_BYTES,
      // Browsers ask for "mqtt" (mqtt.js sends it); anything else gets no subprotocol and is still served.
      handleProtocols: (protocols) => (protocols.has("mqtt") ? "mqtt" : false),
      perMessageDeflate: false,
    });
    const httpOptions = {
      maxHeaderSize: MAX_HEADER_BYTES,
      requestTimeout: REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
    };
    // A socket on which an operator logged in is never evicted (http-guard.ts).
    const loggedIn = (socket: Socket) => guard.authenticated(socket);
    const onRequest = (req: IncomingMessage, res: ServerResponse) => handle(req, res, files, opts, loggedIn);
    const server: Server = opts.tls
      ? createHttpsServer({ ...httpOptions, ...tlsServerOptionsOf(readTlsFiles(opts.tls)) }, onRequest)
      : createServer(httpOptions, onRequest);
    // A browser that does not trust the certificate, or plain HTTP on the port: nothing to serve.
    server.on("tlsClientError", (err: Error & { code?: string }) =>
      opts.log.debug({ code: err.code ?? err.message }, "console TLS handshake failed"),
    );
    server.headersTimeout = HEADERS_TIMEOUT_MS;
    server.keepAliveTimeout = 5_000;
    const guard = guardHttpServer(server, {
      maxConnections: opts.connections?.max ?? CONSOLE_MAX_CONNECTIONS,
      perAddress: opts.connections?.perAddress ?? CONSOLE_MAX_PER_ADDRESS,
      idleTimeoutMs: REQUEST_TIMEOUT_MS,
      overflow: "evict",
      admit: opts.tls ? opts.admitConnection : undefined,
      onRefused: opts.onConnectionRefused,
    });
    server.on("clientError", (_err, socket) => {
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
      else socket.destroy();
    });
    const slots = new WebSocketSlots(
      {
        total: WS_MAX_CLIENTS,
        unauthenticated: WS_MAX_UNAUTHENTICATED,
        perAddress: WS_MAX_UNAUTHENTICATED_PER_ADDRESS,
      },
      (address) => opts.onWebSocketRefused?.(address, "evicted"),
    );
    server.on("upgrade", (req, socket, head) => {
      const url = (req.url ?? "").split("?")[0];
      if (url !== "/mqtt") {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
        return;
      }
      // Only the console's own page opens /mqtt from a browser: another site's page (opened at a
      // desk) would use the desk's browser, and its address, to try operators' passwords.
      if (foreignOrigin(req)) {
        socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n");
        return;
      }
      const address = (socket as Socket).remoteAddress ?? "unknown";
      const slot = slots.admit(address, () => socket.destroy());
      if (typeof slot === "string") {
        opts.onWebSocketRefused?.(address, slot);
        socket.end("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n");
        return;
      }
      socket.once("close", () => slots.release(slot));
      // Mid-login from now (its CONNECT comes next): evicted only after every waiting socket.
      guard.upgraded(socket as Socket);
      wss.handleUpgrade(req, socket, head, (ws) => {
        const stream = createWebSocketStream(ws);
        // A broken socket under a half-written packet: the broker's client sees the close; nothing to report twice.
        stream.on("error", (err) => opts.log.debug({ err: err.message }, "console websocket error"));
        opts.attachMqtt(stream, socket as Socket, () => {
          slots.loggedIn(slot);
          guard.authenticated(socket as Socket);
        });
      });
    });
    const instance = await new Promise<ConsoleServer>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.port, opts.host, () => {
        server.off("error", reject);
        const a = server.address() as AddressInfo;
        resolve(new ConsoleServer(server, wss, { host: opts.host, port: a.port }, opts.tls));
      });
    });
    server.on("connection", (s: Socket) => {
      s.setNoDelay(true);
      instance.sockets.add(s);
      s.once("close", () => instance.sockets.delete(s));
    });
    server.on("error", (err) => opts.log.error({ err }, "console listener error"));
    return instance;
  }

  /** The URL operators open. */
  get url(): string {
    const host =
      this.address.host === "0.0.0.0" || this.address.host === "::" ? "127.0.0.1" : this.address.host;
    const scheme = this.tls ? "https" : "http";
    return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${this.address.port}/`;
  }

  /**
   * Re-reads the certificate and key (reload): new handshakes use them, open connections keep
   * theirs. Throws naming the file, keeping the current ones; false without TLS.
   */
  reloadCertificates(): boolean {
    if (!this.tls) return false;
    const options: SecureContextOptions = readTlsFiles(this.tls);
    (this.server as unknown as { setSecureContext(o: SecureContextOptions): void }).setSecureContext(options);
    return true;
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

/** `GET /api/login-status`: `until` is HH:MM in the site's time zone, `retryAfter` seconds. */
export type LoginStatus = { loginsPaused: false } | { loginsPaused: true; retryAfter: number; until: string };

function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * A ban's end as operators read it: HH:MM on the wall clock in the site's time zone, rounded up to
 * the minute (logins are paused until then, never said to resume before they do).
 */
export function pausedUntil(
  ms: number,
  opts: Pick<ConsoleServerOptions, "timeZone">,
  now = Date.now(),
): string {
  const minute = 60_000;
  const end = Math.ceil((now + ms) / minute) * minute;
  return new Intl.DateTimeFormat("en-GB", {
    timeZone: opts.timeZone?.(),
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).format(new Date(end));
}

function handle(
  req: IncomingMessage,
  res: ServerResponse,
  files: Map<string, string>,
  opts: ConsoleServerOptions,
  loggedIn: (socket: Socket) => void,
): void {
  const url = (req.url ?? "/").split("?")[0] as string;
  const send = (status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, {
      "content-type": "text/plain; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    });
    res.end(req.method === "HEAD" ? undefined : body);
  };
  if (req.method !== "GET" && req.method !== "HEAD") {
    send(405, "method not allowed\n", { allow: "GET, HEAD" });
    return;
  }
  if (req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined) {
    res.shouldKeepAlive = false;
    send(400, "no request body here\n");
    return;
  }
  if (url === "/api/login-status") {
    // Whether logins from this address are paused (a login ban), and until when: the page says
    // so at once. Only about the asking address, which learns nothing a failed login would not.
    const ms = opts.loginPause?.(req.socket) ?? null;
    const body: LoginStatus =
      ms === null
        ? { loginsPaused: false }
        : { loginsPaused: true, retryAfter: retryAfterSeconds(ms), until: pausedUntil(ms, opts) };
    send(200, JSON.stringify(body), { "content-type": CONTENT_TYPES[".json"] as string });
    return;
  }
  if (url === "/api/site") {
    const creds = basicCredentials(req.headers.authorization);
    // No WWW-Authenticate challenge: the page shows its own login, the browser's dialog would hide it.
    if (!creds) {
      send(401, "wrong username or password\n");
      return;
    }
    opts.authenticateOperator(creds[0], creds[1], req.socket).then(
      (login) => {
        if (!login.ok && login.bannedForMs !== null) {
          // RFC 6585 §4: too many requests, with Retry-After (RFC 9110 §10.2.3: whole seconds).
          // The body says it in both languages (curl, a browser without the page's script);
          // the page reads the end from the header.
          const seconds = retryAfterSeconds(login.bannedForMs);
          const minutes = Math.ceil(seconds / 60);
          const until = pausedUntil(login.bannedForMs, opts);
          send(
            429,
            `此地址的登录已暂停至 ${until}（约 ${minutes} 分钟后恢复）：登录失败次数过多。\n` +
              `Logins from this address are paused until ${until} (too many failed logins from this address); try again in ${minutes} minute${minutes === 1 ? "" : "s"} (${seconds} s).\n`,
            { "retry-after": String(seconds), "linli-logins-paused-until": until },
          );
        } else if (!login.ok && login.busy) send(503, "cannot check the login now\n");
        else if (!login.ok) send(401, "wrong username or password\n");
        else {
          loggedIn(req.socket);
          send(200, JSON.stringify(opts.siteInfo(creds[0])), {
            "content-type": CONTENT_TYPES[".json"] as string,
          });
        }
      },
      () => send(503, "cannot check the login now\n"),
    );
    return;
  }
  const file = files.get(url);
  if (url === "/favicon.ico") {
    res.writeHead(204, { "cache-control": "max-age=86400" });
    res.end();
    return;
  }
  if (!file) {
    send(404, "not found\n");
    return;
  }
  const type = CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream";
  res.writeHead(200, {
    "content-type": type,
    "content-length": String(statSync(file).size),
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    // Everything the page loads comes from this server (no CDN, no fonts from outside).
    // frame-ancestors and X-Frame-Options (for browsers without CSP 2): no other page may frame the
    // console, so none can overlay its buttons (clickjacking an acknowledgement).
    "content-security-policy":
      "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; worker-src blob:; frame-ancestors 'none'",
    "x-frame-options": "DENY",
  });
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  createReadStream(file)
    .on("error", () => res.destroy())
    .pipe(res);
}
