/**
 * How many operators' commands one device takes (docs/topics.md "Device commands", "Too many
 * commands"): at most COMMANDS_PER_DEVICE in any WINDOW_MS, from all operators together; a further
 * one is refused before anything is sent (`too-many-commands`) and says when the next is taken.
 * Why a bound: a Modbus command goes on the bus ahead of every queued routine poll, so a script or a
 * stuck button sending without pause starves the polls that supervise the device and its bus; an
 * MQTT device keeps at most 8 waiting downlinks, the oldest dropped, so a flood would push out the
 * commands given before it. Six a minute is a command and its correction every ten seconds, more
 * than the slowest action takes (the GD-2's valve moves in at most 15 s, the LV-4's self-test 10 s).
 * Commands the gateway sends on its own (the GD-2's automatic shut-off) are not limited: they are
 * the device's own rules, one per condition.
 *
 * Measured on the monotonic clock (elapsed time: a step of the wall clock neither frees nor blocks
 * the window). Kept per device entry, weakly: a device a reload removes or replaces takes its
 * window with it, and a new one starts with none.
 */

/** Operators' commands one device takes in any WINDOW_MS. */
export const COMMANDS_PER_DEVICE = 6;
/** The window the bound counts in (a minute). */
export const WINDOW_MS = 60_000;

export class CommandRateLimit {
  /** Per device: the monotonic times of the commands taken in the last WINDOW_MS, oldest first. */
  private readonly taken = new WeakMap<object, number[]>();

  constructor(
    private readonly limit = COMMANDS_PER_DEVICE,
    private readonly windowMs = WINDOW_MS,
  ) {}

  /** Takes one command for `device` at monotonic time `now`: 0 when taken, else ms until the next one is. */
  take(device: object, now: number): number {
    const times = (this.taken.get(device) ?? []).filter((t) => now - t < this.windowMs);
    if (times.length >= this.limit) {
      this.taken.set(device, times);
      return (times[0] as number) + this.windowMs - now;
    }
    times.push(now);
    this.taken.set(device, times);
    return 0;
  }
}
