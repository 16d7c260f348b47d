/**
 * What the malformed-reply e2e tests (rtu-malformed: panels on a socat line, tcp-malformed:
 * kiosks on loopback) share: a gateway polling the simulator with its warnings kept as JSON lines,
 * an operator subscribed to its topics, a bus's counters by a device on it, and the check that a
 * failed poll was logged. The cases and what each test asserts about them stay in the tests.
 */
import { Writable } from "node:stream";
import { expect } from "vitest";
import { validateConfig } from "../../gateway/config/load.js";
import { Gateway } from "../../gateway/gateway.js";
import { createLogger } from "../../gateway/log.js";
import { connect, OPS, SITE, sleep, type TestClient } from "./harness.js";

export type LogLine = Record<string, unknown>;

/** Polls `cond` every 20 ms; throws naming `what` after `ms`. */
export async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export interface PollingGateway {
  gw: Gateway;
  /** The operator, subscribed to `subscribe`. */
  ops: TestClient;
  /** The gateway's warnings and errors, one object per JSON line, in order. */
  log: LogLine[];
  stop(): Promise<void>;
}

/**
 * A gateway with these devices (and buses) only, as configuration input (validated here): no
 * metrics, no storage, warnings kept in `log`.
 */
export async function startPollingGateway(
  site: { devices: readonly unknown[]; buses?: readonly unknown[] },
  subscribe: string,
): Promise<PollingGateway> {
  const config = validateConfig(
    {
      site: { id: SITE },
      mqtt: { listeners: [{ host: "127.0.0.1", port: 0 }] },
      operators: [OPS],
      ...site,
      metrics: { enabled: false },
      storage: { enabled: false },
    },
    "test",
  );
  const log: LogLine[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n").filter(Boolean)) log.push(JSON.parse(l));
      cb();
    },
  });
  const gw = await Gateway.start({
    config,
    logger: createLogger({ level: "warn", format: "json", destination: stream }),
  });
  const ops = await connect(gw, OPS.name, OPS.password);
  await ops.subscribe(subscribe);
  return {
    gw,
    ops,
    log,
    async stop() {
      await ops.end();
      await gw.stop();
    },
  };
}

/** The counters of the bus `device` is polled on (a serial bus, or a kiosk's own TCP endpoint). */
export function busCounters<K extends string>(gw: Gateway, device: string): Record<K, number> {
  const bus = gw.stats().buses.find((b) => b.devices.includes(device))?.bus;
  if (!bus) throw new Error(`no bus for ${device}`);
  return bus as unknown as Record<K, number>;
}

/**
 * A failed poll's line is rate-limited per device and failure (and kind of timeout): unless a line
 * `like` it came before `from`, one must have come since.
 */
export function expectLoggedSince(
  log: readonly LogLine[],
  from: number,
  like: (l: LogLine) => boolean,
): void {
  if (log.slice(0, from).some(like)) return;
  expect(log.slice(from).some(like)).toBe(true);
}
