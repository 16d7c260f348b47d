/**
 * mqtt.js's outgoing store for the upstream bridge: it holds the QoS 1 packets of the current
 * connection only, and replays nothing at a reconnect.
 *
 * mqtt.js (5.x) re-sends what its outgoing store holds at every reconnect one packet at a time,
 * each after the previous one's PUBACK, and emits `connect` only then (its issues #866, #1086):
 * 1,000 unacknowledged messages over a 100 ms round trip held the uplink, P1 included, for
 * ~100 s; and a message the broker refuses by closing the connection was re-sent first at every
 * connect, for good. The bridge journals every message and re-queues its own in-flight ones at
 * a close (P1 first, in publish order), so the library's replay is redundant: `clear()` at the
 * close drops it. Put, get and delete are the library's own Store (a puback deletes by id).
 */
import type { IStore } from "mqtt";

type Inner = IStore;
type Put = Parameters<IStore["put"]>;
type Del = Parameters<IStore["del"]>;

export class ConnectionStore implements IStore {
  private inner: Inner;

  constructor(private readonly make: () => Inner) {
    this.inner = make();
  }

  /** Forgets the closed connection's packets (their callbacks are the bridge's to redo). */
  clear(): void {
    this.close(() => {});
  }

  put(packet: Put[0], cb: Put[1]): this {
    this.inner.put(packet, cb);
    return this;
  }

  /** What a reconnect replays: nothing (an empty store's stream, the library's own). */
  createStream(): ReturnType<IStore["createStream"]> {
    return this.make().createStream();
  }

  del(packet: Del[0], cb: Del[1]): this {
    this.inner.del(packet, cb);
    return this;
  }

  get(packet: Del[0], cb: Del[1]): this {
    this.inner.get(packet, cb);
    return this;
  }

  /**
   * mqtt.js closes the store at `end()` and, when it connects the same client again (its reconnect
   * ends a connection it still counts as up first), goes on with this instance: the closed packets
   * go, a fresh store takes the next ones (a closed one threw on its first put, from the bridge's
   * flush at `connect`, at every reconnect).
   */
  close(cb: Parameters<IStore["close"]>[0]): void {
    const closed = this.inner;
    this.inner = this.make();
    closed.close(cb);
  }
}
