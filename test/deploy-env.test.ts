/**
 * The deploy guide's path to a starting gateway: examples/community.yaml takes
 * its passwords from `${NAME}` variables, the unit reads them from the
 * EnvironmentFile the guide has the deployer write, and the README says which
 * to export. A variable the example gains must reach all three, or the service
 * exits 2 and `RestartPreventExitStatus=2` leaves it stopped.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadConfigFile } from "../gateway/config/load.js";

const EXAMPLE = "examples/community.yaml";

/** `${NAME}` references outside YAML comments. */
function referenced(yaml: string): string[] {
  const live = yaml
    .split("\n")
    .filter((l) => !/^\s*#/.test(l))
    .join("\n");
  return [...new Set([...live.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1] as string))].sort();
}

describe("the deploy guide supplies the example's secrets", () => {
  const unit = readFileSync("deploy/linli.service", "utf8");
  const guide = readFileSync("deploy/README.md", "utf8");
  const needed = referenced(readFileSync(EXAMPLE, "utf8"));

  it("the unit reads the environment file the guide has the deployer write", () => {
    const file = /^EnvironmentFile=-?(\S+)$/m.exec(unit)?.[1];
    expect(file).toBe("/etc/linli/linli.env");
    expect(guide).toContain(`sudo install -m 0600 -o root -g root /dev/null ${file}`);
    // The check runs with the same environment the unit gives the service.
    expect(guide).toMatch(/set -a; \. \/etc\/linli\/linli\.env; exec runuser -u linli -- .* config check/);
  });

  it("the guide's template and the README's export line name every variable the example uses", () => {
    expect(needed.length).toBeGreaterThanOrEqual(5);
    const template = [...guide.matchAll(/^ *([A-Z][A-Z0-9_]+)='[^']*'$/gm)].map((m) => m[1] as string);
    expect(template.sort()).toEqual(needed);
    const exported = /^export (.*)$/m.exec(readFileSync("README.md", "utf8"))?.[1] ?? "";
    expect([...exported.matchAll(/([A-Z][A-Z0-9_]+)=/g)].map((m) => m[1]).sort()).toEqual(needed);
  });

  it("with those variables set the example is valid; without them it is not", () => {
    const env = Object.fromEntries(needed.map((n) => [n, `secret-of-${n}`]));
    expect(loadConfigFile(EXAMPLE, env).operators.map((o) => o.name)).toContain("duty-desk");
    expect(() => loadConfigFile(EXAMPLE, {})).toThrow(/LINLI_DUTY_DESK_PASSWORD is not set/);
  });
});
