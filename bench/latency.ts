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

  /** The histogram, compressed (a few hundred bytes): to pool points of the same kind (pooled()). */
  encoded(): string {
    return hdr.encodeIntoCompressedBase64(this.h);
  }

  /** Adds a histogram from encoded(). */
  add(encoded: string): void {
    this.h.add(hdr.decodeFromCompressedBase64(encoded));
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

/** One summary over several points' samples (their encoded() histograms). */
export function pooled(encoded: readonly string[]): LatencySummary {
  const l = new Latency();
  for (const e of encoded) l.add(e);
  return l.summary();
}
