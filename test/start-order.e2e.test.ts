/**
 * What the gateway publishes while it starts reaches its broker in the order published: a state
 * held before the broker existed must not land after a newer one published while the metrics
 * server was starting (a retained topic would end on the stale value).
 */

import { afterEach, describe, expect, it, vi } from "vitest";
import type { OperatorAction } from "../gateway/broker/access.js";
import { EmbeddedBroker } from "../gateway/broker/embedded.js";
import { MetricsServer } from "../gateway/metrics/server.js";
import { connect, OPS, SITE, startGateway, testConfig } from "./support/harness.js";

type OperatorHandler = (
  operator: string,
  action: OperatorAction,
  target: string,
  command: string | null,
  payload: Buffer,
) => void;

describe("start-up order", () => {
  afterEach(() => vi.restoreAllMocks());

  it("a retained state published before the broker starts does not overtake a newer one published while the servers start", async () => {
    let operator: OperatorHandler | null = null;
    const service = (inService: boolean) =>
      (operator as OperatorHandler)(
        OPS.name,
        "service",
        "d-1",
        null,
        Buffer.from(JSON.stringify({ inService })),
      );
    const brokerStart = EmbeddedBroker.start.bind(EmbeddedBroker);
    vi.spyOn(EmbeddedBroker, "start").mockImplementation(async (opts) => {
      operator = opts.handlers.operator as OperatorHandler;
      service(false); // before the broker exists: held
      return brokerStart(opts);
    });
    const metricsStart = MetricsServer.start.bind(MetricsServer);
    vi.spyOn(MetricsServer, "start").mockImplementation(async (opts) => {
      service(true); // the broker exists, the start is not over: straight to it
      return metricsStart(opts);
    });
    const gw = await startGateway({ config: testConfig({ storage: { enabled: false } }) });
    try {
      const ops = await connect(gw, OPS.name, OPS.password);
      await ops.subscribe(`linli/${SITE}/devices/d-1/service`);
      // Retained messages follow each SUBACK in turn: once the second topic's is in, the first's would be.
      await ops.subscribe(`linli/${SITE}/gateway/status`);
      await ops.waitFor((m) => m.topic.endsWith("/gateway/status"));
      await ops.end();
      // Back in service deletes the mark: nothing retained is left on the topic.
      expect(ops.on("/service").map((m) => m.payload.toString())).toEqual([]);
    } finally {
      await gw.stop();
    }
  });
});
