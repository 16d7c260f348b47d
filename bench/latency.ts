/**
 * Latency histograms: microseconds, 3 significant digits (hdr-histogram-js),
 * summarised in ms.
 */
import hdr from "hdr-histogram-js";

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export class Latency {
  private readonly h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  });

  /** Records one latency in ms, at microsecond resolution. */
  record(ms: number): void {
    this.h.recordValue(Math.min(600_000_000, Math.max(1, Math.round(ms * 1000))));
  }

  summary(): LatencySummary {
    const n = this.h.totalCount;
    const at = (p: number) => (n === 0 ? 0 : this.h.getValueAtPercentile(p) / 1000);
    return {
      count: n,
      p50Ms: at(50),
      p99Ms: at(99),
      p999Ms: at(99.9),
      maxMs: n === 0 ? 0 : this.h.maxValue / 1000,
    };
  }
}
