/**
 * Memory given back after a connection flood.
 *
 * Thousands of sockets that never logged in leave their objects in V8's old
 * generation once closed; V8 collects them at its next full GC, but a gateway
 * that goes quiet after the flood allocates too little to cause one, and its
 * memory reducer only starts after a full GC. Measured (test/hostile): RSS
 * 101 MB before 3,000 idle sockets, 124 MB 30 s after they had all gone
 * (heap used 27 -> 49 MB, all of it garbage: with a forced GC, 95 MB).
 *
 * So once `threshold` connections have closed without logging in, and none
 * for `quietMs`, one full GC runs. It costs one pause (tens of ms for a heap
 * this size) at a moment with no flood going on; an edge box with a fixed
 * memory budget must get its memory back to survive the next one.
 */
import v8 from "node:v8";
import vm from "node:vm";

/** V8's gc(), made reachable at run time (the CLI's flags stay as they are). */
function exposedGc(): () => void {
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
}

export class FloodReclaim {
  private closed = 0;
  private timer: NodeJS.Timeout | null = null;
  runs = 0;

  constructor(
    private readonly threshold = 500,
    private readonly quietMs = 10_000,
    private readonly gc: () => void = exposedGc(),
  ) {}

  /** A connection closed before logging in (refused, timed out, too large). */
  closedBeforeLogin(): void {
    this.closed++;
    if (this.closed < this.threshold) return;
    if (this.timer) this.timer.refresh();
    else {
      this.timer = setTimeout(this.reclaim, this.quietMs);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private readonly reclaim = (): void => {
    this.timer = null;
    this.closed = 0;
    this.runs++;
    this.gc();
  };
}
