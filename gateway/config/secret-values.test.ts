/**
 * A refused configuration is reported in the log, in `linli.reload.json` and by `linli config
 * check`: its messages name the field and never show a password. YAML reads an unquoted
 * `password: 12345678` (a keypad-style device secret) as a number, which the schema refuses.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfigText } from "./load.js";

function refusal(text: string, env: Record<string, string> = {}): string {
  try {
    parseConfigText(text, "site.yaml", env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("accepted");
}

describe("passwords in refusals", () => {
  it("a password of the wrong type is named, its value not shown", () => {
    const text = [
      "site:",
      "  id: s1",
      "operators:",
      "  - name: desk",
      "    password: 86420975",
      "devices:",
      "  - id: p1",
      "    model: ec200",
      "    password: true",
      "northbound:",
      "  upstream:",
      "    url: mqtt://ops-broker:1883",
      "    username: linli",
      "    password: 99887766",
      "",
    ].join("\n");
    const message = refusal(text);
    expect(message).toContain("operators[0].password: must be a string, got a number (not shown)");
    expect(message).toContain("devices[0].password: must be a string, got a boolean (not shown)");
    expect(message).toContain("northbound.upstream.password: must be a string, got a number (not shown)");
    expect(message).not.toContain("86420975");
    expect(message).not.toContain("99887766");
  });

  it("a password from the environment, refused, is not shown either", () => {
    const message = refusal(
      ["site:", "  id: s1", "operators:", "  - name: desk", `    password: $\{PW}`, ""].join("\n"),
      {
        PW: "scrypt$hunter2",
      },
    );
    expect(message).toContain("operators[0].password:");
    expect(message).not.toContain("hunter2");
  });
});
