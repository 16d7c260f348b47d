import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { suiteTempDir } from "../../test/support/temp-dir.js";
import { LAST_GOOD_FILE, loadLastGood, saveLastGood } from "./last-good.js";
import { loadConfigFileWithInput } from "./load.js";

const plain = (x: unknown) => JSON.parse(JSON.stringify(x));
/** A secret that looks like a variable: substituted once, never again from the copy. */
const SECRET = ["a-Secret-$", "{NOT_A_VAR}-1"].join("");

describe("the last good configuration", () => {
  const dir = suiteTempDir("linli-last-good-");

  it("the example site and a site with a profile file come back as they ran, 0600, secrets substituted", () => {
    const env = new Proxy({}, { get: () => SECRET }) as NodeJS.ProcessEnv;
    const example = loadConfigFileWithInput("examples/community.yaml", env);
    mkdirSync(join(dir, "profiles"), { recursive: true });
    copyFileSync("examples/profiles/lv4.yaml", join(dir, "profiles", "lv4.yaml"));
    const site = join(dir, "site.yaml");
    writeFileSync(
      site,
      [
        "site: { id: s1 }",
        "buses: [{ id: rs485-1, type: rtu, path: /dev/ttyUSB0 }]",
        "deviceProfiles: [profiles/lv4.yaml]",
        "devices:",
        "  - { id: tank-1, model: lv4-yaml, bus: rs485-1, unit: 9, settings: { reserve: 3000 } }",
        "",
      ].join("\n"),
    );
    const profiled = loadConfigFileWithInput(site);
    for (const [name, loaded] of [
      ["example", example],
      ["profiled", profiled],
    ] as const) {
      const data = join(dir, `data-${name}`);
      saveLastGood(data, loaded.input, name);
      // The profile file gone: the copy stands alone.
      const back = loadLastGood(data);
      expect(back?.source).toBe(name);
      expect(plain(back?.config)).toEqual(plain(loaded.config));
      expect(statSync(join(data, LAST_GOOD_FILE)).mode & 0o777).toBe(0o600);
    }
    expect(readFileSync(join(dir, "data-example", LAST_GOOD_FILE), "utf8")).toContain(SECRET);
  });

  it("none: null; a newer format or a damaged copy: refused with the reason", () => {
    expect(loadLastGood(join(dir, "none"))).toBeNull();
    const data = join(dir, "data-bad");
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, LAST_GOOD_FILE), JSON.stringify({ format: 2, input: { site: { id: "s1" } } }));
    expect(() => loadLastGood(data)).toThrow(/format 2 is newer than this gateway's \(1\)/);
    writeFileSync(join(data, LAST_GOOD_FILE), '{"format":1,');
    expect(() => loadLastGood(data)).toThrow(/not JSON/);
    writeFileSync(join(data, LAST_GOOD_FILE), JSON.stringify({ format: 1, input: { site: {} } }));
    expect(() => loadLastGood(data)).toThrow(/site\.id/);
  });
});
