/**
 * What one HTTP server of the gateway (the console, the metrics port) may hold of the process's
 * file descriptors (docs/security.md "Limits"). Node's HTTP server alone accepts any number of
 * sockets and checks `headersTimeout` only every 30 s: a socket that sends nothing, or its headers
 * a byte at a time, lived 30 s, so one LAN host opening 2,200 a second held the descriptor limit
 * (65,536 under deploy/linli.service), after which the MQTT listeners could accept no pendant's
 * reconnect and the journal could open no file.
 *
 * - `headersTimeout` and `requestTimeout` are checked every second (connectionsCheckingInterval):
 *   a socket that has not sent its headers in 5 s is closed within 6;
 * - a socket with no bytes either way for `idleTimeoutMs` is closed (server.setTimeout: a client
 *   that does not read its response; a WebSocket clears it, MQTT keepalive watches it then);
 * - at most `perAddress` sockets from one address and `maxConnections` in all; beyond, a new
 *   socket is closed at accept, counted and logged (rate-limited) by the caller.
 */
import type { Server } from "node:http";
import type { Socket } from "node:net";

export interface HttpGuardOptions {
  maxConnections: number;
  perAddress: number;
  idleTimeoutMs: number;
  /** A socket closed at accept: over the server's total, or over its address's share. */
  onRefused?: (address: string, why: "total" | "per-address") => void;
}

/** How often Node checks headersTimeout and requestTimeout (its default, 30 s, let slow headers live 35 s). */
export const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;

export function guardHttpServer(server: Server, opts: HttpGuardOptions): void {
  server.maxConnections = opts.maxConnections;
  server.on("drop", (d?: { remoteAddress?: string }) =>
    opts.onRefused?.(d?.remoteAddress ?? "unknown", "total"),
  );
  // No 'timeout' listener on the server: Node destroys the socket.
  server.setTimeout(opts.idleTimeoutMs);
  // Bounded by maxConnections (an address is forgotten when its last socket closes).
  const open = new Map<string, number>();
  server.on("connection", (s: Socket) => {
    const address = s.remoteAddress ?? "unknown";
    const n = (open.get(address) ?? 0) + 1;
    if (n > opts.perAddress) {
      s.destroy();
      opts.onRefused?.(address, "per-address");
      return;
    }
    open.set(address, n);
    s.once("close", () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}
