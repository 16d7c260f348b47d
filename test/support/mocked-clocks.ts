/**
 * The wall clock (Date.now) and the monotonic one (performance.now), each moved by hand: a clock
 * step moves only `wall`, elapsed time both. Mocked with vitest's spies; the caller restores them
 * (`vi.restoreAllMocks()`).
 */
import { vi } from "vitest";

export function mockedClocks(): { wall: number; mono: number } {
  const c = { wall: Date.UTC(2026, 0, 5, 9), mono: 50_000 };
  vi.spyOn(Date, "now").mockImplementation(() => c.wall);
  vi.spyOn(performance, "now").mockImplementation(() => c.mono);
  return c;
}
