/**
 * What aedes and Node keep per client connection, made smaller where the same
 * behaviour can be had from shared or compact structures. With 10,000 devices
 * each on its own connection every 100 bytes per connection is 1 MB
 * (bench/connections.ts, docs/performance.md "Memory per connection").
 *
 * 1. Shared listeners. aedes gives every client its own listeners on its socket and parser: two
 * `emit.bind(client, "error")`, a `close.bind(client)` for "end", and
 * `stream.finished()` (seven closures and two contexts) to close the client
 * when the socket ends, errors or closes. Each is a per-connection object; the
 * socket and the parser already know their client (`conn.client`,
 * `parser.client`, set by aedes), so one function each, shared by every
 * connection, does the same. With 10,000 devices each on its own connection
 * that is ~0.9 KB per connection (bench/connections.ts, docs/performance.md).
 *
 * What aedes' listeners do, and what replaces them:
 * - socket "error", parser "error": the client emits "error" (its `_onError`
 *   destroys the socket and closes the client) -> `forwardError`;
 * - socket "end": `client.close()` -> `closeClient`;
 * - `finished(conn, close)`: `client.close()` on "end" (above), "error"
 *   (closed by `_onError` already) or "close" -> `closeClient` on "close".
 *   Its "finish" listener closes only once the readable side has ended too,
 *   which "end" has already done.
 *
 * 2. Fast objects. `Object.create(null)` and `{ __proto__: null }` are
 *    dictionary-mode objects in V8 (a 160-byte hash table even when empty):
 *    aedes' `subscriptions` and `duplicates`, and the `_events` of the client
 *    and of its parser (EventEmitter), four per connection. An object whose
 *    prototype is an empty null-prototype object reads every inherited name
 *    (`constructor`, `__proto__`, ...) back as absent just the same (the point
 *    of aedes' null prototypes) and stays in fast mode: ~24 bytes empty.
 * 3. Exact-size listener arrays. A socket's "close", "error" and "end"
 *    listener arrays grew by push to 19 slots (176 bytes) for 2-3 listeners.
 * 4. The inbound QoS 2 set (`_inboundInflight`, a Set with its hash table)
 *    is created at the first QoS 2 PUBLISH; devices send QoS 0 and 1.
 *
 * Checked against aedes 1.2.0 (pinned in package.json). If the listeners are
 * not the ones expected (another aedes), nothing is changed and false is
 * returned (client-listeners.test.ts fails on that).
 */
import type { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import type { Client } from "aedes";

interface AedesClient {
  conn: Socket & { client?: AedesClient };
  _parser: EventEmitter & { client?: AedesClient };
  closed: boolean;
  close(): void;
  emit(event: "error", err: Error): boolean;
  _eos: () => void;
}

function closeClient(this: { client?: AedesClient }): void {
  this.client?.close();
}

function forwardError(this: { client?: AedesClient }, err: Error): void {
  this.client?.emit("error", err);
}

function noop(): void {}

/** Constructs fast-mode objects whose prototype has no properties at all (see 2. above). */
const NullProto = function NullProto(this: object) {} as unknown as new () => Record<PropertyKey, unknown>;
NullProto.prototype = Object.create(null);

/** A fast-mode copy of `dict` (own keys, symbols included) with no inherited names. */
export function fastNullObject(dict: object | undefined): Record<PropertyKey, unknown> {
  const out = new NullProto();
  if (dict) for (const k of Reflect.ownKeys(dict)) out[k] = (dict as Record<PropertyKey, unknown>)[k];
  return out;
}

type Events = Record<string | symbol, unknown>;

/** Listener arrays copied to their exact size (an array that grew by push keeps its slack). */
function exactListenerArrays(emitter: EventEmitter): void {
  const events = (emitter as unknown as { _events?: Events })._events;
  if (!events) return;
  for (const k of Reflect.ownKeys(events)) {
    const l = events[k];
    if (Array.isArray(l)) events[k] = l.slice();
  }
}

/** aedes' `_inboundInflight` as far as aedes uses it (has, size, add, delete), its Set made at the first add. */
export class LazyIdSet {
  private set: Set<number> | null = null;
  get size(): number {
    return this.set === null ? 0 : this.set.size;
  }
  has(id: number): boolean {
    return this.set?.has(id) ?? false;
  }
  add(id: number): this {
    if (this.set === null) this.set = new Set();
    this.set.add(id);
    return this;
  }
  delete(id: number): boolean {
    return this.set?.delete(id) ?? false;
  }
}

/**
 * Right after `aedes.handle()`: the client's empty dictionaries made fast, its parser's events
 * compacted, the QoS 2 set made lazy, the socket's listener arrays exact. The client's own
 * `_events` loses its "connected" listener at CONNACK (a delete, back to dictionary mode): see
 * `compactClientEvents`.
 */
export function compactClient(client: Client): void {
  const c = client as unknown as {
    subscriptions: object;
    duplicates: object;
    _inboundInflight: { size: number };
    _parser?: EventEmitter;
    conn: Socket;
  };
  if (Reflect.ownKeys(c.subscriptions).length === 0) c.subscriptions = fastNullObject(undefined);
  if (Reflect.ownKeys(c.duplicates).length === 0) c.duplicates = fastNullObject(undefined);
  if (c._inboundInflight instanceof Set && c._inboundInflight.size === 0)
    c._inboundInflight = new LazyIdSet();
  if (c._parser) compactEvents(c._parser);
  exactListenerArrays(c.conn);
}

/** An emitter's `_events` as a fast object (Node reads and writes it only by key). */
function compactEvents(emitter: EventEmitter): void {
  const e = emitter as unknown as { _events?: Events };
  if (e._events) e._events = fastNullObject(e._events);
}

/** Once the client is connected (its "connected" listener gone): its `_events` made fast. */
export function compactClientEvents(client: Client): void {
  compactEvents(client as unknown as EventEmitter);
}

/** The listener aedes bound for `event` (named "bound <method>"), or undefined. */
function bound(
  emitter: EventEmitter,
  event: string,
  method: string,
): ((...a: unknown[]) => void) | undefined {
  return emitter.listeners(event).find((f) => f.name === `bound ${method}`) as
    | ((...a: unknown[]) => void)
    | undefined;
}

/** Replaces the client's own socket and parser listeners with shared ones; false if left as aedes made them. */
export function shareClientListeners(client: Client): boolean {
  const c = client as unknown as AedesClient;
  const conn = c.conn;
  const parser = c._parser;
  // A socket already gone: finished() reports it on its own; leave aedes' way.
  if (c.closed || conn.destroyed || conn.client !== c || parser?.client !== c) return false;
  const connError = bound(conn, "error", "emit");
  const connEnd = bound(conn, "end", "close");
  const parserError = bound(parser, "error", "emit");
  if (!connError || !connEnd || !parserError || typeof c._eos !== "function") return false;
  conn.removeListener("error", connError);
  conn.on("error", forwardError);
  conn.removeListener("end", connEnd);
  conn.on("end", closeClient);
  parser.removeListener("error", parserError);
  parser.on("error", forwardError);
  // finished()'s cleanup: removes its listeners. Its callback is covered by "end", "error", "close".
  c._eos();
  c._eos = noop;
  conn.on("close", closeClient);
  return true;
}
