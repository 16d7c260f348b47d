/**
 * MQTT listeners: plain TCP, TLS, WebSocket and secure WebSocket
 * (docs/security.md "TLS"). Each hands the broker a byte stream per
 * connection, with what the transport knows about the peer: whether a client
 * certificate was presented and verified, and the names it carries.
 *
 *   - TLS: TLS 1.2 at least (`minVersion`), certificate and key from files.
 *     With `ca`, clients may present a certificate signed by it: a verified one
 *     names the account (subject CN and DNS subject alternative names), and that
 *     account needs no password (gateway/broker/access.ts). A client without a
 *     certificate, or with one that does not verify, is not refused by TLS: it
 *     logs in with its password like anyone else.
 *   - WebSocket (browser consoles): MQTT in binary frames on `path`
 *     (default /mqtt, mqtt.js's default), subprotocol `mqtt`; with `tls`, wss.
 *   - Certificates are re-read by reloadCertificates() (SIGHUP, `linli reload`):
 *     new handshakes use the new files, established connections are untouched
 *     (tls.Server.setSecureContext).
 */

import { createServer as createHttpServer, type Server as HttpServer, type IncomingMessage } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createRequire } from "node:module";
import { type AddressInfo, createServer as createTcpServer, type Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import {
  createServer as createTlsServer,
  type SecureContextOptions,
  type TLSSocket,
  type Server as TlsServer,
} from "node:tls";
import type { WebSocketServer } from "ws";
import { gateConnections } from "../accept-gate.js";
import { CONNECTIONS_CHECKING_INTERVAL_MS, guardHttpServer } from "../http-guard.js";
import {
  certificateNames,
  LISTEN_BACKLOG,
  onHandshakeFailure,
  readTlsFiles,
  type TlsFiles,
  tlsServerOptionsOf,
} from "./tls-files.js";

export type { TlsFiles } from "./tls-files.js";

export interface ListenerConfig {
  host: string;
  port: number;
  /** "mqtt" (default): MQTT on the socket; "websocket": MQTT over WebSocket. */
  transport?: "mqtt" | "websocket";
  /** WebSocket only: the HTTP path (default /mqtt). */
  path?: string;
  /** TLS on this listener (mqtts, or wss for a WebSocket listener). */
  tls?: TlsFiles;
}

export type TransportName = "tcp" | "tls" | "ws" | "wss";

export interface Connection {
  /** What aedes reads and writes. */
  stream: Duplex;
  /** The TCP socket under it (the same object as `stream` for tcp and tls). */
  socket: Socket;
  transport: TransportName;
  /** Names in a client certificate that verified against the listener's `ca`; empty without one. */
  certNames: readonly string[];
}

/** ws is loaded by the first WebSocket listener: a gateway with MQTT over TCP only never loads it. */
const loadWs = (): typeof import("ws") => createRequire(import.meta.url)("ws");

/** Incoming WebSocket messages are bounded: MQTT packets from consoles are small. */
export const WS_MAX_PAYLOAD = 64 * 1024;
/** A WebSocket listener's socket must have sent its upgrade request within this (then MQTT's connectTimeout runs). */
export const WS_UPGRADE_TIMEOUT_MS = 5_000;

/**
 * A WebSocket opened by a page of another site: an Origin (browsers always send one) naming
 * another host and port than the request's Host (or X-Forwarded-Host, from a reverse proxy that
 * rewrites Host: no page can set either header); `Origin: null` (a sandboxed or local page) too.
 * Tools (mqtt.js in Node, mosquitto) send none.
 */
export function foreignOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  const hostOf = (h: string) => new URL(`http://${h}`).host;
  try {
    const from = new URL(origin).host;
    const forwarded = req.headers["x-forwarded-host"];
    const hosts = [req.headers.host, ...(typeof forwarded === "string" ? forwarded.split(",") : [])];
    return !hosts.some((h) => h !== undefined && h.trim() !== "" && hostOf(h.trim()) === from);
  } catch {
    return true;
  }
}

export function describeListener(l: ListenerConfig): string {
  const ws = l.transport === "websocket";
  const scheme = ws ? (l.tls ? "wss" : "ws") : l.tls ? "mqtts" : "mqtt";
  return `${scheme}://${l.host}:${l.port}${ws ? (l.path ?? "/mqtt") : ""}`;
}

export class Listener {
  /** Every TCP socket accepted, from before any TLS handshake or WebSocket upgrade. */
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly config: ListenerConfig,
    private readonly server: Server | HttpServer,
    private readonly wss: WebSocketServer | null,
  ) {
    // One "close" handler for every socket of the listener, not a closure per connection (memory per
    // device connection, bench/connections.ts).
    const sockets = this.sockets;
    function forget(this: Socket): void {
      sockets.delete(this);
    }
    server.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.on("close", forget);
    });
  }

  /**
   * Binds and starts accepting; `onConnection` is called once per MQTT connection,
   * `onHandshakeFailed` once per failed TLS handshake (that socket is closed). `admit` decides on
   * each TCP socket of a TLS or WebSocket listener as it is accepted, before a handshake or an
   * upgrade request costs anything (false: it closed the socket); a plain TCP listener's
   * connections reach `onConnection` at accept, where the same check is made.
   */
  static async open(
    config: ListenerConfig,
    maxConnections: number,
    onConnection: (c: Connection) => void,
    onError: (err: Error) => void,
    onHandshakeFailed: (code: string, address: string) => void = () => {},
    admit?: (socket: Socket) => boolean,
  ): Promise<Listener> {
    const tlsServerOptions = config.tls ? tlsServerOptionsOf(readTlsFiles(config.tls)) : null;
    let server: Server | HttpServer;
    let wss: WebSocketServer | null = null;
    if (config.transport === "websocket") {
      // TCP_NODELAY: delayed ACKs add tens of ms to every hop otherwise (as for plain MQTT).
      const httpOptions = {
        noDelay: true,
        requestTimeout: WS_UPGRADE_TIMEOUT_MS * 2,
        connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
      };
      const http = tlsServerOptions
        ? createHttpsServer({ ...tlsServerOptions, ...httpOptions })
        : createHttpServer(httpOptions);
      // Before its upgrade a socket is the HTTP server's, not yet the broker's (whose address rate
      // and connectTimeout apply from the upgrade on): Node let one that sent nothing live 30 s
      // and more, so a LAN host could hold the listener's every connection. No share per address:
      // many devices may sit behind one.
      http.headersTimeout = WS_UPGRADE_TIMEOUT_MS;
      guardHttpServer(http, {
        maxConnections,
        perAddress: maxConnections,
        idleTimeoutMs: WS_UPGRADE_TIMEOUT_MS * 2,
        admit,
      });
      // A plain HTTP request is not left hanging: this endpoint only upgrades.
      http.on("request", (_req, res) => {
        res.writeHead(426, { "content-type": "text/plain", upgrade: "websocket" });
        res.end("MQTT over WebSocket: upgrade required\n");
      });
      const { WebSocketServer, createWebSocketStream } = loadWs();
      wss = new WebSocketServer({
        server: http,
        path: config.path ?? "/mqtt",
        maxPayload: WS_MAX_PAYLOAD,
        // Browsers' MQTT clients offer "mqtt" (MQTT 3.1.1 §6); accept it, or none.
        handleProtocols: (protocols) => (protocols.has("mqtt") ? "mqtt" : false),
      });
      wss.on("connection", (ws, req: IncomingMessage) => {
        const socket = req.socket;
        const stream = createWebSocketStream(ws);
        // A stream error (a peer's bad frame) ends this connection only.
        stream.on("error", () => stream.destroy());
        onConnection({
          stream,
          socket,
          transport: tlsServerOptions ? "wss" : "ws",
          // A browser hands an installed client certificate to any page's WebSocket: from another
          // site's page it would log that page in without a password. Such a page needs the password.
          certNames: tlsServerOptions && !foreignOrigin(req) ? certificateNames(socket as TLSSocket) : [],
        });
      });
      wss.on("error", onError);
      server = http;
    } else if (tlsServerOptions) {
      server = createTlsServer({ ...tlsServerOptions, noDelay: true } as Parameters<
        typeof createTlsServer
      >[0]);
      server.on("secureConnection", (socket: TLSSocket) =>
        onConnection({ stream: socket, socket, transport: "tls", certNames: certificateNames(socket) }),
      );
      // The address's rate and bans before the handshake: a host opening handshakes in a loop
      // cost the main thread a key exchange and a signature each, refused only afterwards.
      if (admit) gateConnections(server, admit);
    } else {
      server = createTcpServer({ noDelay: true }, (socket) =>
        onConnection({ stream: socket, socket, transport: "tcp", certNames: [] }),
      );
    }
    // A failed handshake concerns that socket only: counted, the listener goes on.
    if (tlsServerOptions) onHandshakeFailure(server as TlsServer, onHandshakeFailed);
    server.maxConnections = maxConnections;
    const listener = new Listener(config, server, wss);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ port: config.port, host: config.host, backlog: LISTEN_BACKLOG }, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", onError);
    return listener;
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  get listening(): boolean {
    return this.server.listening;
  }

  /**
   * Re-reads this listener's certificate, key and CA. New handshakes use them;
   * open connections keep theirs. Throws (naming the file) and keeps the old
   * context if a file cannot be read or the pair does not match. False for a
   * listener without TLS.
   */
  reloadCertificates(): boolean {
    if (!this.config.tls) return false;
    const options = readTlsFiles(this.config.tls);
    (this.server as unknown as { setSecureContext(o: SecureContextOptions): void }).setSecureContext(options);
    return true;
  }

  /** Stops accepting; resolves once every connection of this listener has closed. */
  close(): Promise<void> {
    this.wss?.close();
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Ends every connection still open (handshakes in progress included). */
  destroyConnections(): void {
    for (const s of this.sockets) s.destroy();
  }
}
