/** The device models this gateway speaks, by model name. */
import type { DeviceModel } from "../core/index.js";
import { ds10 } from "./ds10.js";
import { ec200 } from "./ec200.js";
import { gk3 } from "./gk3.js";
import { lv4 } from "./lv4.js";
import { mfs8 } from "./mfs8.js";
import type { AnyProfile } from "./profile.js";

export const profiles: Readonly<Record<DeviceModel, AnyProfile>> = { ec200, ds10, mfs8, gk3, lv4 };
