/**
 * Gateways started one after another on one store (a restart without a process restart), with
 * operators' persistent sessions on them: what a start publishes for a session reaches it. Every
 * gateway and client left running is stopped after each test (gatewaysInTurn).
 */
import { expect } from "vitest";
import type { ConfigInput } from "../../gateway/config/schema.js";
import type { Gateway } from "../../gateway/gateway.js";
import type { MemoryStore } from "../../gateway/state/store.js";
import { gatewaysInTurn, OPS, SITE, startGateway, type TestClient } from "./harness.js";

export function oneStoreGateways(operatorClientId: string) {
  const inTurn = gatewaysInTurn();
  return {
    /** A client ended with the gateway (stop) or after the test. */
    client: inTurn.client,
    async start(config: ConfigInput, store: MemoryStore): Promise<Gateway> {
      return inTurn.adopt(await startGateway({ config, store }));
    },
    /** A clean stop, its clients first: the next start on the store is a restart. */
    stop: inTurn.stop,
    /** The operator's persistent session, subscribed to the command results. */
    async operator(g: Gateway): Promise<TestClient> {
      const ops = await inTurn.client(g, OPS.name, OPS.password, {
        clientId: operatorClientId,
        clean: false,
      });
      expect(await ops.subscribe(`linli/${SITE}/cmd/#`)).toBe(1);
      return ops;
    },
  };
}
