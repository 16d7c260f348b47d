/**
 * The gateway's own count of what it refused, read from its Prometheus endpoint (docs/metrics.md
 * `linli_rejections_total{model,reason}`) before and after a run: a message dropped over its
 * device's rate is acknowledged like any other (docs/topics.md "Misbehaving devices"), so the
 * devices cannot tell; only the gateway's counters say what it did not carry.
 */
import { get as httpGet } from "node:http";
import { get as httpsGet } from "node:https";

/** The reasons a run's report shows: refused over a device's rate, or left with a device over its share. */
export const RATE_REASONS = ["rate-limited", "p1-device-limit", "deferred-to-device"] as const;
export type RateReason = (typeof RATE_REASONS)[number];

/** Per reason, per model: the counter's value. */
export type Refusals = Record<RateReason, Record<string, number>>;

const emptyRefusals = (): Refusals => ({
  "rate-limited": {},
  "p1-device-limit": {},
  "deferred-to-device": {},
});

/** `linli_rejections_total` samples of the RATE_REASONS in a Prometheus text exposition. */
export function parseRefusals(text: string): Refusals {
  const out = emptyRefusals();
  for (const line of text.split("\n")) {
    const m = /^linli_rejections_total\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[1] as string).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = l[2] as string;
    const reason = labels.reason as RateReason | undefined;
    const value = Number(m[2]);
    if (reason === undefined || !RATE_REASONS.includes(reason) || !Number.isFinite(value)) continue;
    const model = labels.model ?? "";
    out[reason][model] = (out[reason][model] ?? 0) + value;
  }
  return out;
}

/** What the gateway refused between two reads (a counter lower after: the gateway restarted, counted from 0). */
export function refusalsBetween(before: Refusals, after: Refusals): Refusals {
  const out = emptyRefusals();
  for (const reason of RATE_REASONS)
    for (const [model, v] of Object.entries(after[reason])) {
      const was = before[reason][model] ?? 0;
      const d = v >= was ? v - was : v;
      if (d > 0) out[reason][model] = d;
    }
  return out;
}

/**
 * The longest answer read: the gateway's exposition is a few tens of KB (its labels are models and
 * reasons, never devices); a URL that answers with more (the wrong service, a stream) is refused
 * rather than buffered whole.
 */
export const MAX_METRICS_BYTES = 4 * 1024 * 1024;

/**
 * Reads the endpoint: the refusals, or why they could not be read (said in the report). One
 * connection per read, closed after it (a pooled one may be a gateway that has since restarted).
 */
export async function readRefusals(
  url: string,
  timeoutMs = 5_000,
  maxBytes = MAX_METRICS_BYTES,
): Promise<Refusals | { error: string }> {
  const text = await readMetricsText(url, timeoutMs, maxBytes);
  return typeof text === "string" ? parseRefusals(text) : text;
}

/** The endpoint's text exposition, or why it could not be read; one connection per read. */
export function readMetricsText(
  url: string,
  timeoutMs = 5_000,
  maxBytes = MAX_METRICS_BYTES,
): Promise<string | { error: string }> {
  return new Promise((resolve) => {
    const get = url.startsWith("https:") ? httpsGet : httpGet;
    const req = get(url, { agent: false, timeout: timeoutMs }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return resolve({ error: `${url}: HTTP ${res.statusCode}` });
      }
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on("data", (d: Buffer) => {
        bytes += d.length;
        if (bytes > maxBytes) {
          resolve({ error: `${url}: answer over ${maxBytes} bytes, not a linli /metrics` });
          req.destroy();
          return;
        }
        chunks.push(d);
      });
      res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      res.on("error", (err) => resolve({ error: `${url}: ${err.message}` }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (err: NodeJS.ErrnoException) => resolve({ error: `${url}: ${err.code ?? err.message}` }));
  });
}

/**
 * The sum of a metric's samples in a text exposition (every label set: `linli_alerts_open` over its
 * states and priorities), or null when it has none.
 */
export function metricSum(text: string, name: string): number | null {
  let sum: number | null = null;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    const m = /^(?:\{[^}]*\})?\s+(\S+)/.exec(rest);
    if (!m) continue;
    const v = Number(m[1]);
    if (Number.isFinite(v)) sum = (sum ?? 0) + v;
  }
  return sum;
}
