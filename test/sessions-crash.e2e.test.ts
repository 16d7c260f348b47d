/**
 * Operators' persistent sessions with a real crash: a broker process with operators' sessions on the journal
 * is killed with SIGKILL while a console is away; a new broker on the same journal directory
 * gives the console every alert it missed. Needs `npm run build` (test/support/sessions-child.mjs
 * runs the built code).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { AccessPolicy } from "../gateway/broker/access.js";
import { EmbeddedBroker } from "../gateway/broker/embedded.js";
import { validateConfig } from "../gateway/config/load.js";
import { Journal } from "../gateway/journal/journal.js";
import { createLogger, RateLimitedLog } from "../gateway/log.js";
import { Registry } from "../gateway/registry.js";
import { Counters } from "../gateway/stats.js";

const config = validateConfig({
  site: { id: "s1" },
  operators: [{ name: "ops", password: "secret" }],
  devices: [],
});
const cleanup: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function waitFor(check: () => boolean, what: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("operators' persistent sessions across a SIGKILL", () => {
  it("a console that was away gets every alert raised before the kill, in order, once each", async () => {
    expect(existsSync("dist/gateway/broker/embedded.js")).toBe(true);
    const dir = mkdtempSync(path.join(os.tmpdir(), "linli-sessions-crash-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));

    const child: ChildProcess = spawn(process.execPath, ["test/support/sessions-child.mjs", dir], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    cleanup.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    });
    let out = "";
    child.stdout?.on("data", (d) => (out += d));
    child.stderr?.on("data", (d) => (out += d));
    await waitFor(
      () => /port \d+/.test(out),
      () => out,
    );
    const port = Number(/port (\d+)/.exec(out)?.[1]);

    const away = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      username: "ops",
      password: "secret",
      clientId: "ops-console-k",
      clean: false,
      reconnectPeriod: 0,
    });
    await away.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    await away.endAsync();
    child.stdin?.write("publish 30\n");
    await waitFor(
      () => out.includes("queued 30"),
      () => out,
    );
    child.kill("SIGKILL");
    await exited;
    expect(child.signalCode).toBe("SIGKILL");

    const journal = Journal.open({ dir });
    cleanup.push(() => journal.close());
    const log = createLogger({ level: "silent" });
    const broker = await EmbeddedBroker.start({
      listeners: [{ host: "127.0.0.1", port: 0 }],
      maxConnections: 10,
      policy: new AccessPolicy("s1", new Registry(config, { onLost: () => {}, onWelfareDue: () => {} })),
      handlers: { uplink: (_d, _p, _c, done) => done(null), operator: () => {} },
      counters: new Counters(),
      log,
      rateLog: new RateLimitedLog(log),
      sessions: { store: journal },
    });
    cleanup.push(() => broker.close());
    const back = mqtt.connect(`mqtt://127.0.0.1:${broker.addresses()[0]?.port}`, {
      username: "ops",
      password: "secret",
      clientId: "ops-console-k",
      clean: false,
      reconnectPeriod: 0,
    });
    cleanup.push(() => back.endAsync(true));
    const received: string[] = [];
    back.on("message", (_t, payload) => received.push(payload.toString()));
    await waitFor(
      () => received.length >= 30,
      () => `${received.length} received`,
    );
    // One more, published after the restart, shows nothing else was on its way.
    broker.publish("linli/s1/alerts/p2/DOOR/marker", "marker", 1, false);
    await waitFor(
      () => received.includes("marker"),
      () => `${received.length} received`,
    );
    expect(received).toEqual([...Array.from({ length: 30 }, (_, i) => `{"n":${i}}`), "marker"]);
  });
});
