/**
 * Times as the operators' wall clock shows them: ISO 8601 with the offset of
 * `site.timezone` ("2026-12-02T22:15:03.120+08:00"), whatever zone the
 * gateway box runs in. The offset comes from SiteTime (cached per quarter hour).
 */
import type { SiteTime } from "../../core/index.js";

const pad = (n: number) => String(n).padStart(2, "0");

/** `t` (epoch ms) as local ISO 8601 with offset; null stays null. */
export function localIso(t: number | null, site: SiteTime): string | null {
  if (t === null || !Number.isFinite(t)) return null;
  // Whole minutes: ISO 8601 offsets have no seconds (only pre-1900 local mean times had them).
  const offMin = Math.round(site.offsetMs(t) / 60_000);
  const local = new Date(t + offMin * 60_000).toISOString().slice(0, -1);
  const sign = offMin < 0 ? "-" : "+";
  const abs = Math.abs(offMin);
  return `${local}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** `t` as local "HH:mm", for phrases ("搁置至 22:30"). */
export function localClock(t: number, site: SiteTime): string {
  const m = Math.floor(site.msOfDay(t) / 60_000);
  return `${pad(Math.floor(m / 60))}:${pad(m % 60)}`;
}

/** `t` as local "YYYY-MM-DD HH:mm", for phrases that may name another day ("搁置至 2026-12-06 07:15"). */
export function localDateTime(t: number, site: SiteTime): string {
  return `${(localIso(t, site) ?? "").slice(0, 10)} ${localClock(t, site)}`;
}
