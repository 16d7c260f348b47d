/**
 * The device models this gateway speaks: one line per model. Everything
 * else that names models (the config schema's device union, the alert-code
 * and model types, the southbound binding, docs/config.schema.json, the
 * tables of docs/topics.md) is derived from this list (devices/profile.ts).
 */

import { ds10 } from "./ds10.js";
import { ec200 } from "./ec200.js";
import { gd2 } from "./gd2.js";
import { gk3 } from "./gk3.js";
import { lv4 } from "./lv4.js";
import { mfs8 } from "./mfs8.js";
import type { AlertCodeOf } from "./profile.js";
import { type AnyProfile, profileProblem } from "./profile.js";

export const PROFILES = [ec200, ds10, mfs8, gk3, gd2, lv4] as const;

declare module "../core/index.js" {
  /** The registered profiles' model names and alert codes (core/model.ts derives its unions from them). */
  interface RegisteredModels {
    model: (typeof PROFILES)[number]["model"];
    alertCode: AlertCodeOf<(typeof PROFILES)[number]>;
  }
}

const byModel = new Map<string, AnyProfile>();
for (const p of PROFILES) {
  // A model the gateway could not poll or supervise stops the process here, at start-up.
  const problem =
    profileProblem(p) ?? (byModel.has(p.model) ? `device model "${p.model}" registered twice` : null);
  if (problem) throw new Error(problem);
  byModel.set(p.model, p);
}

/** The profile of a model name, or undefined. */
export function profileFor(model: string): AnyProfile | undefined {
  return byModel.get(model);
}

/** The registered model names, in order. */
export const MODELS: readonly string[] = PROFILES.map((p) => p.model);
