/** `linli passwd` and `linli config check` with hashed and plain passwords (built CLI, real processes). */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PasswordVerifier, parseSecret } from "../gateway/broker/credentials.js";
import { suiteTempDir } from "./support/temp-dir.js";

const CLI = "dist/cli/linli.js";

function linli(
  args: string[],
  stdin: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

describe("linli passwd", { timeout: 60_000 }, () => {
  const dir = suiteTempDir("linli-passwd-");

  it("prints a salted scrypt hash of the first line of stdin, never the password", async () => {
    const r = await linli(["passwd", "--cost", "10"], "correct horse\nignored second line\n");
    expect(r.code).toBe(0);
    const hash = r.stdout.trim();
    expect(hash).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(`${r.stdout}${r.stderr}`).not.toContain("correct horse");
    const v = new PasswordVerifier();
    expect(await v.verify(parseSecret(hash), Buffer.from("correct horse"))).toBe("ok");
    expect(await v.verify(parseSecret(hash), Buffer.from("ignored second line"))).toBe("bad-password");
    // The default cost is 2^14.
    expect((await linli(["passwd"], "x")).stdout).toMatch(/^scrypt\$16384\$8\$1\$/);
  });

  it("refuses an empty password", async () => {
    const r = await linli(["passwd"], "\n");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("empty password");
    expect(r.stdout).toBe("");
  });

  it("config check accepts the hash, warns about plain passwords by account, and names a malformed hash", async () => {
    const hash = (await linli(["passwd", "--cost", "10"], "s3cret")).stdout.trim();
    const file = join(dir, "site.yaml");
    writeFileSync(
      file,
      [
        "site: { id: s1 }",
        "operators:",
        // With roles: an operator without one is named in a warning of its own (docs/security.md).
        `  - { name: duty, password: '${hash}', role: responder }`,
        "  - { name: night, password: plain-secret, role: responder }",
        "",
      ].join("\n"),
    );
    const ok = await linli(["config", "check", file], "");
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain("plain-text passwords in the configuration for night");
    expect(ok.stderr).not.toContain("plain-secret");
    expect(ok.stderr).not.toContain("duty");

    // Without a role: a supervisor, said with the file and the field (docs/security.md "Operator roles").
    writeFileSync(file, `site: { id: s1 }\noperators:\n  - { name: duty, password: '${hash}' }\n`);
    const roleless = await linli(["config", "check", file], "");
    expect(roleless.code).toBe(0);
    expect(roleless.stderr).toContain(
      `${file}: warning: operators[0].role: operator duty has no role and so is a supervisor`,
    );

    writeFileSync(
      file,
      `site: { id: s1 }\noperators:\n  - { name: duty, password: 'scrypt$1000$8$1$abc$def' }\n`,
    );
    const bad = await linli(["config", "check", file], "");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/site\.yaml:3: operators\[0\]\.password: scrypt N must be a power of two/);
  });
});
