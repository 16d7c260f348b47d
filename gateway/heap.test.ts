import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { validateConfig } from "./config/load.js";
import { Gateway } from "./gateway.js";
import {
  beginStartHeap,
  heapGrowingPercent,
  holdsStartHeap,
  START_HEAP_GROWING_PERCENT,
  START_HEAP_MIN_RESTORED,
  STARTUP_ENV,
  STARTUP_NODE_FLAGS,
  WORKER_SEMI_SPACE_MB,
  withWorkerSemiSpace,
} from "./heap.js";

const root = new URL("../", import.meta.url);

describe("edge heap settings", () => {
  // V8 reads these only at start-up; every way the gateway is started must pass them.
  it("the CLI's shebang line and `npm start` carry the start-up flags", () => {
    const shebang = readFileSync(new URL("cli/linli.ts", root), "utf8").split("\n")[0];
    const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as {
      scripts: { start: string };
    };
    expect(STARTUP_NODE_FLAGS.length).toBeGreaterThan(0);
    for (const flag of STARTUP_NODE_FLAGS) {
      expect(shebang).toContain(flag);
      expect(pkg.scripts.start).toContain(flag);
    }
  });

  // glibc reads MALLOC_ARENA_MAX only when the process starts.
  it("the CLI's shebang line, `npm start` and the systemd unit set the start-up environment", () => {
    const shebang = readFileSync(new URL("cli/linli.ts", root), "utf8").split("\n")[0] as string;
    const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as {
      scripts: { start: string };
    };
    const unit = readFileSync(new URL("deploy/linli.service", root), "utf8");
    const entries = Object.entries(STARTUP_ENV);
    expect(entries.length).toBeGreaterThan(0);
    for (const [name, value] of entries) {
      // `env -S NAME=VALUE node ...`: the assignment before the command.
      expect(shebang).toMatch(
        new RegExp(`^#!/usr/bin/env -S (\\S+=\\S+ )*${name}=${value} (\\S+=\\S+ )*node `),
      );
      expect(pkg.scripts.start).toMatch(
        new RegExp(`(^|&& )(\\S+=\\S+ )*${name}=${value} (\\S+=\\S+ )*node `),
      );
      expect(unit).toMatch(new RegExp(`^Environment=.*\\b${name}=${value}\\b`, "m"));
    }
  });

  it("the `#!` line's `env -S` hands node the environment (as the kernel runs it)", () => {
    const shebang = readFileSync(new URL("cli/linli.ts", root), "utf8").split("\n")[0] as string;
    const [interpreter, ...rest] = shebang.slice(2).split(" ");
    // The kernel passes everything after the interpreter as one argument, then the script.
    const printed = execFileSync(
      interpreter as string,
      [`${rest.join(" ")} -p JSON.stringify(process.env)`],
      { encoding: "utf8", env: { PATH: process.env.PATH } },
    );
    const env = JSON.parse(printed) as Record<string, string>;
    for (const [name, value] of Object.entries(STARTUP_ENV)) expect(env[name]).toBe(value);
  });
});

describe("withWorkerSemiSpace", () => {
  // Allocates enough short-lived objects to grow a young generation to its limit, then reports it.
  const code = `const v8 = require("node:v8"); const { parentPort } = require("node:worker_threads");
    parentPort.postMessage("ready");
    const keep = []; for (let i = 0; i < 2e6; i++) { const o = { a: i, b: [i] }; if (i % 100 === 0) keep.push(o); }
    const ns = v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
    parentPort.postMessage(ns.space_size);`;
  const newSpaceOf = (w: Worker) =>
    new Promise<number>((resolve, reject) => {
      w.on("message", (m: unknown) => typeof m === "number" && resolve(m));
      w.once("error", reject);
    }).finally(() => w.terminate());
  const firstMessage = (w: Worker) => new Promise((resolve) => w.once("message", resolve));

  it("gives the worker a small young generation and leaves the next isolates the process's", async () => {
    const small = withWorkerSemiSpace(() => new Worker(code, { eval: true }), firstMessage);
    expect(await newSpaceOf(small)).toBeLessThanOrEqual(2 * WORKER_SEMI_SPACE_MB * 1048576);
    // The flag is back: a worker created now grows past it.
    const plain = new Worker(code, { eval: true });
    expect(await newSpaceOf(plain)).toBeGreaterThan(2 * WORKER_SEMI_SPACE_MB * 1048576);
  });
});

describe("the start's heap growth", () => {
  it("is set while a start is under way and put back when the last one ends", () => {
    const before = heapGrowingPercent();
    const first = beginStartHeap();
    expect(heapGrowingPercent()).toBe(START_HEAP_GROWING_PERCENT);
    const second = beginStartHeap();
    first();
    first(); // once only: a second call must not end the other start's
    expect(heapGrowingPercent()).toBe(START_HEAP_GROWING_PERCENT);
    second();
    expect(heapGrowingPercent()).toBe(before);
  });

  it("a gateway's start sets it, and its stop puts it back", async () => {
    const config = validateConfig(
      {
        site: { id: "heap" },
        mqtt: { listeners: [{ host: "127.0.0.1", port: 0 }] },
        operators: [{ name: "op", password: "op-password" }],
        devices: [{ id: "p-1", model: "ec200", password: "pw-p1" }],
        log: { level: "silent" },
        metrics: { enabled: false },
      },
      "test",
    );
    const before = heapGrowingPercent();
    let during = -1;
    const started = Gateway.start({ config, store: null, mallocTrim: null });
    during = heapGrowingPercent();
    const gw = await started;
    try {
      expect(during).toBe(START_HEAP_GROWING_PERCENT);
      // Nothing restored (no journal): no burst to come, the running growth at once.
      expect(heapGrowingPercent()).toBe(before);
    } finally {
      await gw.stop();
    }
    expect(heapGrowingPercent()).toBe(before);
  });

  // What the start's growth saves is a measurement, not a behaviour: `node dist/bench/startup-memory.js`
  // (docs/durability.md, "Start-up memory, fifth look"). A unit test comparing two child processes'
  // committed heap failed in CI (72.8 against 75.6 MB, wanted 4 MB apart): V8 sizes the heap by
  // timing, and the two figures overlap on a loaded machine, with single-threaded GC too.
  it("is held past the start only when it restored a site's worth of alerts and devices", () => {
    expect(holdsStartHeap(null)).toBe(false);
    expect(holdsStartHeap({ alerts: 0, devices: 12 })).toBe(false);
    expect(holdsStartHeap({ alerts: 10_000, devices: 0 })).toBe(true);
    expect(holdsStartHeap({ alerts: 400, devices: START_HEAP_MIN_RESTORED - 400 })).toBe(true);
  });
});
