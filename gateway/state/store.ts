/**
 * What the gateway needs of its durable store: a keyed map whose every change
 * is written through to the operating system at once (a crash of the process
 * loses nothing written) and made durable on disk by `commit` (group commit:
 * one fdatasync for everything written before it). gateway/journal implements
 * it; MemoryStore stands in for it in unit tests.
 */
export interface DurableStore {
  get(key: string): unknown;
  /** Live keys starting with `prefix`, with their decoded values. */
  entries(prefix?: string): IterableIterator<[string, unknown]>;
  /**
   * `kept`, when given: the same state in a smaller encoding, which the store keeps in memory (and
   * copies into its snapshots) in place of `value`; the record holds `value`. An alert state is
   * written as a map (what versions before 2026-12-06 read) and kept positional: ~420 bytes less
   * of heap per open alert.
   */
  put(key: string, value: unknown, kept?: unknown): void;
  /**
   * Replaces what is kept in memory for a live key by `kept`, the same state in a smaller
   * encoding; writes nothing (a key not live: nothing). Recovery, for alerts read as maps.
   */
  keepAs(key: string, kept: unknown): void;
  /**
   * Two puts in one record: both durable, or (a torn tail) neither; commit() waits for it as for
   * put(). A press's alert state with its device's seq record.
   */
  putPair(key1: string, value1: unknown, key2: string, value2: unknown): void;
  /** A record commit() does not wait for (a last-seen checkpoint): durable by the next sync. */
  putCheckpoint(key: string, value: unknown): void;
  delete(key: string): void;
  /** A tombstone commit() does not wait for (the end of an on-delay): durable by the next sync. */
  deleteCheckpoint(key: string): void;
  /** `done` once everything written so far is durable under the sync policy. */
  commit(done: () => void): void;
  /**
   * Grows with every record commit() waits for (put, putPair, delete; not checkpoints): unchanged
   * across a message's handling, the message put nothing its acknowledgement must wait for.
   */
  readonly commitMark: number;
  /**
   * `done` once everything put so far is fdatasync'd, whatever the policy (under `interval`
   * commit() waits only for the write): asks for a group sync like a commit under `batch`.
   */
  afterSync(done: () => void): void;
  /** Records put but not yet handed to the operating system (a process crash would lose them). */
  readonly writePending: boolean;
  /** `done` once every record put so far survives a crash of the process (at once if none pending). */
  afterWrite(done: () => void): void;
  /** Hands every record put so far to the operating system now (a P1 waits for no other write). */
  writeNow(): void;
  /**
   * Writes and fdatasyncs every record put so far on the calling thread: the overflow policy of a
   * bound that must hold across a power cut (an alert's revs past its last durable record).
   */
  syncNow(): void;
}

/** In memory only (unit tests): values are copied as the journal's encoding would. */
export class MemoryStore implements DurableStore {
  readonly map = new Map<string, unknown>();
  writes = 0;
  commits = 0;
  commitMark = 0;

  get(key: string): unknown {
    const v = this.map.get(key);
    return v === undefined ? undefined : structuredClone(v);
  }

  *entries(prefix = ""): IterableIterator<[string, unknown]> {
    for (const [k, v] of this.map) if (k.startsWith(prefix)) yield [k, structuredClone(v)];
  }

  put(key: string, value: unknown, kept?: unknown): void {
    this.writes++;
    this.commitMark++;
    this.map.set(key, structuredClone(kept === undefined ? value : kept));
  }

  keepAs(key: string, kept: unknown): void {
    if (this.map.has(key)) this.map.set(key, structuredClone(kept));
  }

  /** One write: both keys change together. */
  putPair(key1: string, value1: unknown, key2: string, value2: unknown): void {
    this.writes++;
    this.commitMark++;
    this.map.set(key1, structuredClone(value1));
    this.map.set(key2, structuredClone(value2));
  }

  putCheckpoint(key: string, value: unknown): void {
    this.writes++;
    this.map.set(key, structuredClone(value));
  }

  delete(key: string): void {
    this.writes++;
    this.commitMark++;
    this.map.delete(key);
  }

  deleteCheckpoint(key: string): void {
    this.writes++;
    this.map.delete(key);
  }

  commit(done: () => void): void {
    this.commits++;
    queueMicrotask(done);
  }

  afterSync(done: () => void): void {
    this.commit(done);
  }

  readonly writePending = false;

  afterWrite(done: () => void): void {
    done();
  }

  writeNow(): void {}

  syncs = 0;

  syncNow(): void {
    this.syncs++;
  }
}
