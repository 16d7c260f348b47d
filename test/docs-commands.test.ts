/**
 * The mosquitto commands the docs tell people to type: each passes a client id
 * its login owns (docs/security.md "Client ids": the gateway refuses any other
 * with "identifier rejected"), and none carries a date that has already passed.
 */
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const FILES = [
  "README.md",
  "deploy/README.md",
  ...readdirSync("docs")
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];

/** Every mosquitto_pub / mosquitto_sub command, its continuation lines joined, up to the end of inline code. */
function commands(text: string): string[] {
  const joined = text.replace(/\\\n\s*/g, " ");
  const out: string[] = [];
  for (const line of joined.split("\n")) {
    const at = line.search(/mosquitto_(pub|sub) /);
    if (at < 0) continue;
    const rest = line.slice(at);
    // Inline code ends at its backtick; a code block line runs to its end.
    out.push(line.slice(0, at).includes("`") ? (rest.split("`")[0] as string) : rest);
  }
  return out;
}

/** An operator owns `<name>` and `<name>-…`; a device `<model>-<deviceId>` (docs/security.md). */
function owns(user: string, id: string): boolean {
  return id === user || id.startsWith(`${user}-`) || id.endsWith(`-${user}`);
}

describe("mosquitto commands in the docs", () => {
  const all = FILES.flatMap((file) => commands(readFileSync(file, "utf8")).map((c) => ({ file, c })));

  it("are found (the scan is not vacuous)", () => {
    expect(all.filter(({ file }) => file === "docs/operator-guide.zh-CN.md").length).toBeGreaterThanOrEqual(
      10,
    );
    expect(all.filter(({ file }) => file === "README.md").length).toBeGreaterThanOrEqual(4);
  });

  it("each passes a client id its login owns", () => {
    for (const { file, c } of all) {
      const id = / -i (\S+)/.exec(c)?.[1];
      const user = / -u (\S+)/.exec(c)?.[1];
      expect(id, `${file}: ${c}`).toBeDefined();
      if (user !== undefined) expect(owns(user, id as string), `${file}: ${c}`).toBe(true);
    }
  });

  it("none carries an `until` that has passed", () => {
    for (const { file, c } of all)
      for (const m of c.matchAll(/"until":"(\d[^"]*)"/g))
        expect(Date.parse(m[1] as string), `${file}: ${c}`).toBeGreaterThan(Date.now());
  });
});

describe("the device certificate example (docs/security.md)", () => {
  it("names a device of examples/community.yaml by its id, as the CN must", () => {
    const doc = readFileSync("docs/security.md", "utf8");
    const cns = [...doc.matchAll(/-keyout (\S+)\.key -out \S+\.csr -subj "\/CN=([^"]+)"/g)]
      .map((m) => ({ file: m[1] as string, cn: m[2] as string }))
      .filter(({ cn }) => cn !== "linli-gateway");
    expect(cns.length).toBeGreaterThan(0);
    const example = readFileSync("examples/community.yaml", "utf8");
    for (const { file, cn } of cns) {
      expect(example, cn).toContain(`- id: ${cn}\n`);
      expect(file).toBe(cn);
    }
  });
});
