/** The `linli` command line as a user runs it (built CLI, real processes, 127.0.0.1 only). */
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { encode } from "cbor-x";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashPassword } from "../gateway/broker/credentials.js";
import { snapshotName } from "../gateway/journal/files.js";
import { SNAPSHOT_FORMAT } from "../gateway/journal/format.js";
import { frame, OP_SNAP_BEGIN, OP_SNAP_END } from "../gateway/journal/record.js";
import { Gk3Controller } from "../sim/modbus/gk3.js";
import { ModbusTcpSlaveServer } from "../sim/modbus/tcp-server.js";
import { suiteTempDir } from "./support/temp-dir.js";

const run = promisify(execFile);
const CLI = "dist/cli/linli.js";

async function linli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    // A bound for a hung CLI, not a speed limit: on a loaded 2-core box a start-up took 8 s.
    const r = await run(process.execPath, [CLI, ...args], { timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("linli CLI", { timeout: 180_000 }, () => {
  const dir = suiteTempDir("linli-cli-");
  const kiosk = new Gk3Controller();
  const server = new ModbusTcpSlaveServer(kiosk, { host: "127.0.0.1", port: 0 });
  let port = 0;
  beforeAll(async () => {
    port = await server.start();
  });
  afterAll(async () => {
    kiosk.dispose();
    await server.stop();
  });

  it("config check: ok for a valid file, exit 2 naming file, line and field for a bad one", async () => {
    const good = join(dir, "good.yaml");
    writeFileSync(good, "site:\n  id: s1\ndevices:\n  - id: p1\n    model: ec200\n    password: x\n");
    const ok = await linli("config", "check", good);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("ok (site s1, 1 devices");
    const bad = join(dir, "bad.yaml");
    writeFileSync(
      bad,
      "site:\n  id: s1\ndevices:\n  - id: p1\n    model: ec200\n    password: x\n    heartbeatInterval: soon\n",
    );
    const no = await linli("config", "check", bad);
    expect(no.code).toBe(2);
    expect(no.stderr).toContain(`${bad}:7: devices[0].heartbeatInterval: expected a duration`);
  });

  it("config check and start find the same problems, every one with its line (ports, zero durations, references)", async () => {
    const file = join(dir, "clash.yaml");
    writeFileSync(
      file,
      [
        "site:\n  id: s1",
        "mqtt:\n  listeners:\n    - port: 18830",
        "metrics:\n  port: 18830",
        "devices:\n  - id: p1\n    model: ec200\n    password: x\n    heartbeatInterval: 0\n    household: nowhere\n",
      ].join("\n"),
    );
    const check = await linli("config", "check", file);
    const start = await linli("start", "--config", file, "--data-dir", join(dir, "clash-data"));
    expect(check.code).toBe(2);
    expect(start.code).toBe(2);
    const lines = (s: string) => s.split("\n").filter((l) => l.startsWith(`  ${file}:`));
    expect(lines(check.stderr)).toEqual([
      `  ${file}:12: devices[0].heartbeatInterval: must be more than 0, got 0`,
      `  ${file}:13: devices[0].household: unknown household "nowhere"`,
      `  ${file}:7: metrics.port: metrics port 18830 is also mqtt.listeners[0]'s (127.0.0.1:18830)`,
    ]);
    expect(lines(start.stderr)).toEqual(lines(check.stderr));
    // The command line's ports are checked too.
    const good = join(dir, "ports.yaml");
    writeFileSync(good, "site:\n  id: s1\n");
    const flags = await linli("start", "--config", good, "--mqtt-port", "18831", "--metrics-port", "18831");
    expect(flags.code).toBe(2);
    expect(flags.stderr).toContain("metrics port 18831 is also mqtt.listeners[0]'s");
  });

  it("start logs the exposure warnings of config check: an MQTT listener beyond loopback without TLS", async () => {
    const file = join(dir, "exposed.yaml");
    // TEST-NET-1 (RFC 5737): no such address here, so the bind fails and nothing leaves loopback.
    writeFileSync(file, "site:\n  id: s1\nmqtt:\n  listeners:\n    - host: 192.0.2.1\n      port: 18840\n");
    const r = await linli(
      "start",
      "--config",
      file,
      "--data-dir",
      join(dir, "exposed-data"),
      "--log-format",
      "json",
    );
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain(
      "mqtt.listeners[0].host: the MQTT listener on 192.0.2.1:18840 has no TLS",
    );
  });

  it("config check warns (exit 0) about a serial device that does not exist", async () => {
    const file = join(dir, "bus.yaml");
    const tty = join(dir, "ttyUSB-not-here");
    writeFileSync(file, `site:\n  id: s1\nbuses:\n  - id: rs485-1\n    type: rtu\n    path: ${tty}\n`);
    const r = await linli("config", "check", file);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("ok (site s1");
    expect(r.stderr).toContain(
      `${file}: warning: buses[0].path: serial device ${tty} of bus rs485-1 does not exist here (adapter unplugged, or wrong path?)`,
    );
  });

  it("config check warns (exit 0) when the connection caps exceed the open-file limit, naming each cap", async () => {
    const file = join(dir, "fds.yaml");
    writeFileSync(
      file,
      [
        "site:\n  id: s1",
        "mqtt:\n  maxConnections: 2000\n  listeners:\n    - port: 18831\n    - port: 18832\n    - port: 18833",
        "console:\n  enabled: true\n",
      ].join("\n"),
    );
    // `ulimit -n` lowers the hard limit too: Node raises its soft limit to the hard one at start.
    const under = (n: number) =>
      run("sh", ["-c", `ulimit -n ${n} && exec "$0" "$@"`, process.execPath, CLI, "config", "check", file], {
        timeout: 60_000,
      });
    const low = await under(4096);
    expect(low.stdout).toContain("ok (site s1");
    expect(low.stderr).toContain(
      `${file}: warning: mqtt.maxConnections: the connection caps may need 6704 file descriptors (mqtt.listeners (3 x mqtt.maxConnections 2000) 6000 + console 512 + metrics 64 + margin (journal, serial ports, Modbus TCP devices, upstream, Node's own) 128) but this process may open 4096`,
    );
    expect((await under(8192)).stderr).not.toContain("file descriptors");
    // The start says it too, before it listens (here it then stops: its first listener's port is taken).
    const held = createServer();
    await new Promise<void>((r) => held.listen(0, "127.0.0.1", r));
    const taken = (held.address() as { port: number }).port;
    try {
      writeFileSync(file, readFileSync(file, "utf8").replace("port: 18831", `port: ${taken}`));
      const start = await run(
        "sh",
        [
          "-c",
          `ulimit -n 4096 && exec "$0" "$@"`,
          process.execPath,
          CLI,
          "start",
          "--config",
          file,
          "--data-dir",
          join(dir, "fds-data"),
          "--metrics-port",
          "0",
          "--console-port",
          "0",
        ],
        { timeout: 60_000 },
      ).catch((err: { code: number; stdout: string; stderr: string }) => err);
      expect("code" in start ? start.code : 0).not.toBe(0);
      expect(`${start.stdout}${start.stderr}`).toContain(
        "the connection caps may need 6704 file descriptors (mqtt.listeners (3 x mqtt.maxConnections 2000) 6000",
      );
    } finally {
      await new Promise((r) => held.close(r));
    }
  });

  it("config check warns (exit 0) about a site file with passwords that every user of the box can read", async () => {
    const file = join(dir, "readable.yaml");
    writeFileSync(
      file,
      "site:\n  id: s1\ndevices:\n  - id: p1\n    model: ec200\n    password: x-long-device-secret\n",
    );
    chmodSync(file, 0o644);
    const open = await linli("config", "check", file);
    expect(open.code).toBe(0);
    expect(open.stderr).toContain(
      `${file}: warning: ${file} can be read by every user of this box (mode 644) and holds passwords; chmod o-r it (docs/security.md)`,
    );
    chmodSync(file, 0o640);
    expect((await linli("config", "check", file)).stderr).not.toContain("can be read by every user");
  });

  it("config check warns (exit 0) about a plain listener on the LAN and the demo's passwords, hashed or not", async () => {
    const hash = await hashPassword("demo-operator", { log2N: 10 });
    const file = join(dir, "weak.yaml");
    writeFileSync(
      file,
      [
        "site:\n  id: s1",
        "mqtt:\n  listeners:\n    - host: 0.0.0.0\n      port: 18883",
        `operators:\n  - name: operator\n    password: '${hash}'`,
        "devices:\n  - id: p1\n    model: ec200\n    password: demo-p1\n",
      ].join("\n"),
    );
    const r = await linli("config", "check", file);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("ok (site s1");
    expect(r.stderr).toContain(
      `${file}: warning: mqtt.listeners[0].host: the MQTT listener on 0.0.0.0:18883 has no TLS`,
    );
    expect(r.stderr).toContain(`${file}: warning: passwords of operator, p1: the demo's well-known password`);
    expect(r.stderr).not.toContain("demo-operator");
  });

  it("--version prints package.json's version", async () => {
    const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
    const r = await linli("--version");
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it("the demo refuses a --metrics-port that is taken, saying which and what to do", async () => {
    const held = createServer();
    await new Promise<void>((r) => held.listen(0, "127.0.0.1", r));
    const taken = (held.address() as { port: number }).port;
    try {
      const r = await linli(
        "start",
        "--demo",
        "--mqtt-port",
        "0",
        "--metrics-port",
        String(taken),
        "--console-port",
        "0",
        "--data-dir",
        join(dir, "demo-data"),
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        `metrics port 127.0.0.1:${taken} is already in use; choose another with --metrics-port`,
      );
    } finally {
      await new Promise((r) => held.close(r));
    }
  });

  it("usage errors exit 2 and say what is allowed: --demo with --config, log level and format, sim options", async () => {
    const site = join(dir, "usage.yaml");
    writeFileSync(site, "site:\n  id: s1\n");
    const both = await linli("start", "--demo", "--config", site, "--data-dir", join(dir, "usage-data"));
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/option '--demo' cannot be used with option '-c, --config <file>'/);
    // Neither: as much a usage error (a unit retrying it on exit 1 would loop for nothing).
    const neither = await linli("start", "--data-dir", join(dir, "usage-data"));
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain("give --config FILE, or --demo");
    const level = await linli("start", "--config", site, "--log-level", "verbose");
    expect(level.code).toBe(2);
    expect(level.stderr).toContain("Allowed choices are trace, debug, info, warn, error, fatal, silent");
    const format = await linli("start", "--config", site, "--log-format", "bogus");
    expect(format.code).toBe(2);
    expect(format.stderr).toContain("Allowed choices are auto, json, pretty");
    for (const args of [["--scale", "abc"], ["--bogus"]]) {
      const r = await linli("sim", ...args);
      expect(r.code, r.stderr).toBe(2);
    }
    // A bad site file: exit 2, the file, the line and the field.
    const badtype = join(dir, "badtype.yaml");
    writeFileSync(
      badtype,
      "site:\n  id: s1\noperators:\n  - name: o\n    password: p\ndevices:\n  - id: p1\n    model: ec200\n    password: x\n    heartbeatInterval: soon\n",
    );
    const bad = await linli("sim", "--config", badtype, "--gateway", "mqtt://127.0.0.1:1");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${badtype}:10: devices[0].heartbeatInterval: expected a duration`);
    // Options that exclude each other, checked by the command itself.
    for (const args of [
      ["--count", "1"],
      ["--tcp", "127.0.0.1:1", "--serial", "/dev/null"],
      ["--tcp", "nowhere"],
    ]) {
      const r = await linli("modbus", "read", ...args);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
    }
    // No command is a usage error too; help and the version are not errors.
    expect((await linli()).code).toBe(2);
    expect((await linli("config")).code).toBe(2);
    expect((await linli("sim", "--help")).code).toBe(0);
    expect((await linli("--version")).code).toBe(0);
  });

  it("start refuses a data directory a newer journal format wrote: exit 1 naming it, the formats and what to do; nothing changed", async () => {
    const file = join(dir, "newer.yaml");
    writeFileSync(file, "site:\n  id: s1\n");
    const data = join(dir, "newer-data");
    mkdirSync(data);
    const snap = Buffer.concat([
      frame(OP_SNAP_BEGIN, "", encode({ v: SNAPSHOT_FORMAT + 1, seq: 1 })),
      frame(OP_SNAP_END, "", encode({ records: 0 })),
    ]);
    writeFileSync(join(data, snapshotName(1)), snap);
    const r = await linli(
      "start",
      "--config",
      file,
      "--data-dir",
      data,
      "--mqtt-port",
      "0",
      "--metrics-port",
      "0",
      "--console-port",
      "0",
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`journal directory ${data} was written by a newer version of Linli`);
    expect(r.stderr).toContain(`snapshot format ${SNAPSHOT_FORMAT + 1}`);
    expect(r.stderr).toContain("Backup and restore");
    expect(readdirSync(data).filter((f) => !f.endsWith(".pid") && f !== "LOCK")).toEqual([snapshotName(1)]);
    expect(readFileSync(join(data, snapshotName(1)))).toEqual(snap);
  });

  it("start refuses a bad config without starting", async () => {
    const r = await linli("start", "--config", join(dir, "missing.yaml"));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot read file/);
  });

  it("modbus read prints every interpretation of a kiosk's registers", async () => {
    kiosk.setTemperature(-3.5);
    const r = await linli(
      "modbus",
      "read",
      "--tcp",
      `127.0.0.1:${port}`,
      "--fn",
      "4",
      "--address",
      "0",
      "--count",
      "3",
    );
    expect(r.code).toBe(0);
    // Register 1 is the cabinet temperature, int16 x0.1: -35.
    expect(r.stdout).toMatch(/^\s+1\s+0xFFDD\s+65501\s+-35\s/m);
    for (const order of ["ABCD", "CDAB", "BADC", "DCBA"]) expect(r.stdout).toContain(order);
  });

  it("modbus read names a Modbus exception and exits 1", async () => {
    const r = await linli(
      "modbus",
      "read",
      "--tcp",
      `127.0.0.1:${port}`,
      "--fn",
      "4",
      "--address",
      "50",
      "--count",
      "2",
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("ILLEGAL_DATA_ADDRESS");
  });

  it("a reader that closes the pipe early (`| head`) ends the command quietly, exit 0, no stack trace", async () => {
    // A shell's pipe (a child's stdio "pipe" is a socket pair whose buffer holds the whole
    // output): head exits after one byte and the rest of the output (the schema is ~80 kB, more
    // than a pipe holds) meets a closed pipe. pipefail: bash exits with the CLI's code.
    for (const args of [
      ["config", "schema"],
      ["sim", "--list-scenarios"],
    ]) {
      const r = await run(
        "bash",
        ["-c", 'set -o pipefail; "$0" "$@" | head -c 1 >/dev/null', process.execPath, CLI, ...args],
        { timeout: 60_000 },
      ).then(
        (x) => ({ code: 0, stderr: x.stderr }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
      expect(r, args.join(" ")).toEqual({ code: 0, stderr: "" });
    }
  });

  it("modbus read says what failed and what to check when the connection is refused, exit 1", async () => {
    // A port the OS gave and that was closed again: nothing listens there.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const closed = (server.address() as { port: number }).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const r = await linli("modbus", "read", "--tcp", `127.0.0.1:${closed}`, "--count", "1");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`^cannot connect to Modbus TCP 127\\.0\\.0\\.1:${closed}: connection refused`),
    );
    expect(r.stderr).toContain("check the address and port");
    expect(r.stderr).not.toContain("ECONNREFUSED");
  });

  it("modbus read refuses ambiguous targets (a usage error: exit 2)", async () => {
    const r = await linli("modbus", "read", "--count", "2");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/exactly one of --serial PATH or --tcp HOST:PORT/);
  });
});
