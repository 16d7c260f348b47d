/**
 * One behavioural suite from the LV-4 datasheet, two profiles: the code
 * profile and the same sensor written as data. Both must pass all of it.
 */
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { compileProfile } from "../devices/declared/compile.js";
import { lv4 } from "../devices/lv4.js";
import type { ModbusDeviceProfile } from "../devices/profile.js";
import { parseProfileText } from "../gateway/config/device-profiles.js";
import { describeLv4Behaviour } from "./support/lv4-behaviour.js";

describeLv4Behaviour("code profile (devices/lv4.ts)", () => lv4);

const FILE = "examples/profiles/lv4.yaml";
function yamlLv4(): ModbusDeviceProfile {
  const r = parseProfileText(readFileSync(FILE, "utf8"), FILE);
  if (!r.doc) throw new Error(r.problems.map((p) => `${p.line}: ${p.path}: ${p.message}`).join("\n"));
  return compileProfile(r.doc) as ModbusDeviceProfile;
}
describeLv4Behaviour(`YAML profile (${FILE})`, yamlLv4);

it("the two profiles' commands are asked to confirm alike (actuates)", () => {
  const flags = (p: ModbusDeviceProfile) =>
    Object.fromEntries(Object.entries(p.commands).map(([n, c]) => [n, c.actuates === true]));
  expect(flags(yamlLv4())).toEqual(flags(lv4));
});
