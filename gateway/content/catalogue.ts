/**
 * What a message catalogue holds (one per locale: messages.zh-CN.ts,
 * messages.en.ts): per alert code a title, an optional detail read from the
 * alert's `detail`, and the default action; per transition the phrase that
 * says what just happened. The formatter (format.ts) puts them together into
 * one line; the catalogues only hold words.
 */

import type { AlertCode } from "../../core/index.js";
import { type AlertDetail, type AlertSpec, PROFILES } from "../../devices/index.js";
import type { ReplacedFor, SubjectGone, Transition } from "../alerts/alert.js";

export type Detail = AlertDetail;

export interface CodeText {
  /** What happened, a short phrase: "紧急呼叫", "Emergency call". */
  title: string;
  /** The figure that matters from the alert's `detail` (battery 12 %), or null when it has none. */
  detail?: (d: Detail, causes: readonly string[]) => string | null;
  /** What the operator should do (overridable per site: `alerts.actions`). */
  action: string;
}

/** What a transition phrase may name (null when the alert does not say). */
export interface TransitionArgs {
  /** Who acted: ackedBy, shelvedBy or outOfServiceBy. */
  by: string | null;
  /** Local time (HH:mm, site.timezone) the shelving ends. */
  until: string | null;
  count: number;
  /** Escalation level and how long nobody has acknowledged, ms (escalations only). */
  level: number;
  unacknowledgedMs: number;
}

export interface Catalogue {
  codes: Record<AlertCode, CodeText>;
  /** The phrase after the place, or "" when the title and place say it all (raised). */
  transitions: Record<Transition, (a: TransitionArgs) => string>;
  /**
   * `cleared` of an event alert (a call, a fall): its call window ended with nobody's
   * acknowledgement. Nothing "returned to normal" (docs/topics.md, Lifecycle).
   */
  windowEnded: string;
  /**
   * `closed` by the gateway for a new alert in its place (the live condition's priority changed,
   * or its test mode or maintenance ended): says so, so the close is not read as the fault gone.
   */
  replaced: (why: ReplacedFor) => string;
  /**
   * `closed` by the gateway because its device or household left the site configuration (a
   * reload, or a start with an edited file): says so, so an unanswered call is not read as handled.
   * `modelName`: what operators call the model now under the device's id, if it has a name.
   */
  gone: (why: SubjectGone, modelName: string | null) => string;
  /**
   * `cleared` of any other alert that is a record, not a condition (the gateway's own
   * STORAGE_DAMAGED_AT_START): nothing to return to normal and no call window; it waits for an
   * acknowledgement.
   */
  recordedAwaitingAck: string;
  /** Put in front of alerts raised in test mode (nobody is paged). */
  testPrefix: string;
  /** The action of a code that only a YAML device profile declares, when the profile gives none. */
  declaredAction: string;
  /**
   * A YAML alert's incident in its detail (docs/devices.md, an alarm's `peak` and `command`): the
   * peak with its unit (doubtful: not a believed reading), the gateway's command sent or waiting
   * for the device (a profile's own `sent` / `queued` words take their place), joined by `detailSep`.
   */
  declaredPeak: (value: number, unit: string | undefined, doubtful: boolean) => string;
  declaredSent: (command: string) => string;
  declaredQueued: (command: string) => string;
  detailSep: string;
  /** Joins: title to place, place to the transition phrase; and a detail in brackets. */
  afterTitle: string;
  beforeTransition: string;
  bracket: (s: string) => string;
  /**
   * A household nobody named in the configuration (or one a reload removed), by its id, saying
   * what the id is: "住户 hh-1", "household hh-1"; never the bare id.
   */
  unnamedHousehold: (id: string) => string;
  /**
   * A device nobody named, by what operators call its model and its id: "紧急呼叫器 p-7",
   * "pendant p-7"; "设备 x-1" / "device x-1" for a model without such a name (a YAML profile's).
   */
  unnamedDevice: (model: string | null, id: string) => string;
  /** A device and where it is: "紧急呼叫器（卧室床头）". */
  deviceAt: (device: string, location: string | null) => string;
  /** A household and its resident: "1号楼 101室 张阿姨". */
  householdWith: (household: string, resident: string | null) => string;
  /**
   * A thing named with whose or where it is, for operator results and command failures:
   * "1号楼 101室 张阿姨的紧急呼叫", "Emergency call at 1号楼 101室, 张阿姨".
   */
  of: (owner: string, thing: string) => string;
  /**
   * An alert of a household's device, for operator results: the device (named with its household,
   * `of`) and the alert's title, so that a pendant's alert and a door sensor's can be told apart:
   * "1号楼 101室 张阿姨的入户门磁（入户门），设备外壳被打开",
   * "Device cover opened, door sensor (front door) at 1号楼 101室, 张阿姨".
   */
  deviceAlert: (device: string, title: string) => string;
  /**
   * An alert message's place: the household (with its resident), the device, or both:
   * "1号楼 101室 张阿姨，紧急呼叫器（卧室床头）", "pendant (bedside) at 1号楼 101室, 张阿姨".
   */
  place: (household: string | null, device: string | null) => string;
}

/** The words of a span of time in one language: a count with its unit, and what joins two. */
export interface SpanWords {
  day: (n: number) => string;
  hour: (n: number) => string;
  minute: (n: number) => string;
  second: (n: number) => string;
  join: string;
}

const SPAN_UNITS = [
  [86_400, "day"],
  [3_600, "hour"],
  [60, "minute"],
  [1, "second"],
] as const;

/**
 * A span of time for people ("2 小时 5 分钟", "30 seconds"): the largest unit that gives a
 * whole number of at least 1, then the next unit when it is not 0; never "0 minutes" (a 5 s
 * heartbeat's silence, a 30 s welfare period). Truncated, not rounded: "silent for 2 hours"
 * is never more than the device has been silent. Under a second reads as 1 second.
 */
export function span(ms: unknown, words: SpanWords): string {
  const s = Math.max(1, Math.floor(Number(ms) / 1000) || 0);
  const i = SPAN_UNITS.findIndex(([u]) => s >= u);
  const [unit, name] = SPAN_UNITS[i] ?? SPAN_UNITS[3];
  const text = words[name](Math.floor(s / unit));
  const next = SPAN_UNITS[i + 1];
  if (next === undefined) return text;
  const rest = Math.floor((s % unit) / next[0]);
  return rest === 0 ? text : text + words.join + words[next[1]](rest);
}
/** A detail field as a number, or null when absent (the same helper the profiles' texts use). */
export { num } from "../../devices/index.js";

/**
 * A catalogue's codes: its own words (the gateway's codes and those several
 * models share), and for a code it lacks, the words its device profile brings
 * (`AlertSpec.text`; the first registered profile declaring the code), so a
 * new model needs no edit here. The catalogue test holds every code to a
 * title and an action in every locale, and a code of one model to its profile.
 */
export function withProfileTexts(
  locale: "zh-CN" | "en",
  own: Partial<Record<AlertCode, CodeText>>,
): Record<AlertCode, CodeText> {
  const out: Partial<Record<AlertCode, CodeText>> = {};
  for (const p of PROFILES)
    for (const [code, spec] of Object.entries(p.alerts as Record<AlertCode, AlertSpec>)) {
      const text = spec.text?.[locale];
      if (text && !(code in own) && !(code in out))
        out[code as AlertCode] = { title: text.title, action: text.action, detail: text.detail };
    }
  return { ...out, ...own } as Record<AlertCode, CodeText>;
}
