import { describe, expect, it } from "vitest";
import { parseConfigText } from "./load.js";
import { PLAIN_TEXT_NAMED_MAX, plainTextPasswordAccounts, plainTextPasswordWarning } from "./warnings.js";

const HASH = "scrypt$16384$8$1$veGGObTYuYFy4XUmy3XXsQ==$7Xw3mVcxlwIyv/IFOscZVsZT5oS4QNYxGsx/eO9SAa4=";

function site(pendants: number, password: (i: number) => string): string {
  const lines = ["site:", "  id: s1", "operators:", "  - name: desk", `    password: "${HASH}"`, "devices:"];
  for (let i = 1; i <= pendants; i++)
    lines.push(`  - id: p${i}`, "    model: ec200", `    password: "${password(i)}"`);
  return `${lines.join("\n")}\n`;
}

describe("plain-text password warning", () => {
  it("names each account with a plain password, never the password, and none with a hash", () => {
    const config = parseConfigText(
      site(3, (i) => (i === 2 ? HASH : `secret-${i}`)),
      "site.yaml",
      {},
    );
    expect(plainTextPasswordAccounts(config)).toEqual(["p1", "p3"]);
    const warning = plainTextPasswordWarning(config);
    expect(warning).toContain("for p1, p3:");
    expect(warning).not.toContain("secret");
  });

  it("names the first few of a large site and counts the rest", () => {
    const config = parseConfigText(
      site(2000, (i) => `secret-${i}`),
      "site.yaml",
      {},
    );
    const warning = plainTextPasswordWarning(config) ?? "";
    expect(warning).toContain(`p${PLAIN_TEXT_NAMED_MAX} and ${2000 - PLAIN_TEXT_NAMED_MAX} more:`);
    expect(warning).not.toContain(`p${PLAIN_TEXT_NAMED_MAX + 1},`);
    expect(warning.length).toBeLessThan(300);
  });

  it("is null when every password is a hash", () => {
    expect(
      plainTextPasswordWarning(
        parseConfigText(
          site(2, () => HASH),
          "site.yaml",
          {},
        ),
      ),
    ).toBeNull();
  });
});
