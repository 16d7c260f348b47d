/**
 * Gateways started one after another on one store (a restart without a process restart), with
 * operators' persistent sessions on them: what a start publishes for a session reaches it. Every
 * gateway and client left running is stopped after each test.
 */
import { afterEach, expect } from "vitest";
import type { ConfigInput } from "../../gateway/config/schema.js";
import type { Gateway } from "../../gateway/gateway.js";
import type { MemoryStore } from "../../gateway/state/store.js";
import { connect, OPS, SITE, startGateway, type TestClient } from "./harness.js";

export function oneStoreGateways(operatorClientId: string) {
  const gateways: Gateway[] = [];
  const clients: TestClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end()));
    await Promise.all(gateways.splice(0).map((g) => g.stop()));
  });
  return {
    /** Clients to end with the gateway (stop) or after the test. */
    clients,
    async start(config: ConfigInput, store: MemoryStore): Promise<Gateway> {
      const g = await startGateway({ config, store });
      gateways.push(g);
      return g;
    },
    /** A clean stop, its clients first: the next start on the store is a restart. */
    async stop(g: Gateway): Promise<void> {
      await Promise.all(clients.splice(0).map((c) => c.end()));
      await g.stop();
      gateways.splice(gateways.indexOf(g), 1);
    },
    /** The operator's persistent session, subscribed to the command results. */
    async operator(g: Gateway): Promise<TestClient> {
      const ops = await connect(g, OPS.name, OPS.password, { clientId: operatorClientId, clean: false });
      clients.push(ops);
      expect(await ops.subscribe(`linli/${SITE}/cmd/#`)).toBe(1);
      return ops;
    },
  };
}
