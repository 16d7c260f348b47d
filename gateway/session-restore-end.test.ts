import { afterEach, describe, expect, it, vi } from "vitest";
import { SESSION_RESTORE_CHECK_MAX_MS, sessionRestoreEnd } from "./startup.js";

/** A promise resolved by hand. */
function gate(): { promise: Promise<void>; open(): void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe("sessionRestoreEnd: the restored sessions' duplicate check ends when the republication is through", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("waits for a write slower than the pacing's 2 s, then for aedes", async () => {
    vi.useFakeTimers();
    const write = gate();
    const aedes = gate();
    const ends: boolean[] = [];
    sessionRestoreEnd({ drained: () => write.promise }, { settled: () => aedes.promise }, (timedOut) =>
      ends.push(timedOut),
    );
    await vi.advanceTimersByTimeAsync(5_000);
    expect(ends).toEqual([]);
    write.open();
    await vi.advanceTimersByTimeAsync(0);
    expect(ends).toEqual([]);
    aedes.open();
    await vi.advanceTimersByTimeAsync(0);
    expect(ends).toEqual([false]);
    // Once only: the bound's timer was cleared.
    await vi.advanceTimersByTimeAsync(SESSION_RESTORE_CHECK_MAX_MS);
    expect(ends).toEqual([false]);
  });

  it("is bounded: a disk that never answers ends it after SESSION_RESTORE_CHECK_MAX_MS, once", async () => {
    vi.useFakeTimers();
    const write = gate();
    const ends: boolean[] = [];
    sessionRestoreEnd({ drained: () => write.promise }, { settled: async () => {} }, (t) => ends.push(t));
    await vi.advanceTimersByTimeAsync(SESSION_RESTORE_CHECK_MAX_MS - 1);
    expect(ends).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(ends).toEqual([true]);
    write.open();
    await vi.advanceTimersByTimeAsync(0);
    expect(ends).toEqual([true]);
  });

  it("without a journal, ends once aedes has settled", async () => {
    const ends: boolean[] = [];
    sessionRestoreEnd(null, { settled: async () => {} }, (t) => ends.push(t));
    await new Promise((r) => setImmediate(r));
    expect(ends).toEqual([false]);
  });
});
