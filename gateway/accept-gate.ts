/**
 * A decision on each TCP socket a server accepts, taken before the server itself sees it: before
 * a TLS handshake (a key exchange and a signature on the main thread per connection, whoever
 * asks) and before an HTTP parser is set up. docs/security.md "Limits".
 *
 * Node's servers take their sockets on the 'connection' event: a tls.Server (and so an HTTPS
 * server) starts the handshake in the listener it registers at construction, an HTTP server
 * attaches its parser there. The gate takes the listeners registered so far and calls them only
 * for a socket it admits; a refused socket never reaches them. Listeners added after the gate see
 * every socket, the refused ones (already destroyed) too.
 */
import type { Server, Socket } from "node:net";

/** `admit` returns false for a socket it refused: it has destroyed it (and counted it). */
export function gateConnections(server: Server, admit: (socket: Socket) => boolean): void {
  const inner = server.listeners("connection") as ((this: Server, socket: Socket) => void)[];
  server.removeAllListeners("connection");
  server.on("connection", function gate(this: Server, socket: Socket) {
    if (!admit(socket)) return;
    for (const listener of inner) listener.call(this, socket);
  });
}

/**
 * The TCP socket under a server-side TLS socket (the socket itself otherwise): what the gate saw.
 * Node keeps it as `_parent`; it also keeps the peer's address after the TLS socket lost it.
 */
export function tcpSocketOf(socket: Socket): Socket {
  return (socket as unknown as { _parent?: Socket | null })._parent ?? socket;
}
