/**
 * `mqtts://` upstream (docs/security.md "Upstream broker over TLS"): the
 * gateway verifies the upstream broker's certificate against `tls.ca` and
 * presents its own client certificate; a broker whose certificate it cannot
 * verify gets nothing. The upstream broker is aedes on a TLS server that
 * requires client certificates.
 */
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { createServer as createTlsServer, type Server } from "node:tls";
import { Aedes } from "aedes";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import type { Gateway } from "../gateway/gateway.js";
import { makeTestPki, type TestPki } from "./support/certs.js";
import { SITE, sleep, startGateway, testConfig } from "./support/harness.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function upstreamBroker(pki: TestPki): Promise<{ port: number; clients: () => string[] }> {
  const aedes = await Aedes.createBroker();
  const seen: string[] = [];
  aedes.on("client", (c) => seen.push(c.id));
  const server: Server = createTlsServer(
    {
      cert: readFileSync(pki.serverCert),
      key: readFileSync(pki.serverKey),
      ca: readFileSync(pki.ca),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (socket) => aedes.handle(socket),
  );
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        aedes.close(() => server.close(() => resolve()));
      }),
  );
  return { port: (server.address() as AddressInfo).port, clients: () => seen };
}

async function gatewayWith(upstream: Record<string, unknown>): Promise<Gateway> {
  const gw = await startGateway({
    config: testConfig({ northbound: { upstream: upstream as never }, storage: { enabled: false } }),
  });
  cleanups.push(() => gw.stop());
  return gw;
}

describe("upstream broker over TLS (mqtts://)", () => {
  it("verifies the broker against tls.ca, presents its client certificate, and mirrors", async () => {
    const pki = makeTestPki();
    cleanups.push(() => pki.remove());
    const up = await upstreamBroker(pki);
    const gatewayCert = pki.client("linli-t1");
    const ca = readFileSync(pki.ca);
    const watcher = await mqtt.connectAsync(`mqtts://127.0.0.1:${up.port}`, {
      ca,
      cert: readFileSync(gatewayCert.cert),
      key: readFileSync(gatewayCert.key),
      clientId: "watcher",
      reconnectPeriod: 0,
    });
    cleanups.push(() => watcher.endAsync(true));
    const status = new Promise<string>((resolve) =>
      watcher.on("message", (topic, payload) => {
        if (topic === `linli/${SITE}/gateway/status`) resolve(payload.toString());
      }),
    );
    await watcher.subscribeAsync(`linli/${SITE}/#`, { qos: 1 });
    const gw = await gatewayWith({
      url: `mqtts://127.0.0.1:${up.port}`,
      tls: { ca: pki.ca, cert: gatewayCert.cert, key: gatewayCert.key },
      reconnectInitial: "200ms",
    });
    expect(await status).toBe("online");
    expect(gw.stats().upstream?.connected).toBe(true);
  });

  it("does not connect to a broker whose certificate its CA did not sign", async () => {
    const pki = makeTestPki();
    const other = makeTestPki();
    cleanups.push(
      () => pki.remove(),
      () => other.remove(),
    );
    const up = await upstreamBroker(pki);
    const cert = pki.client("linli-t1");
    const gw = await gatewayWith({
      url: `mqtts://127.0.0.1:${up.port}`,
      tls: { ca: other.ca, cert: cert.cert, key: cert.key },
      reconnectInitial: "100ms",
    });
    // Several reconnection attempts' worth of time: none may get through.
    await sleep(1500);
    expect(gw.stats().upstream).toMatchObject({ connected: false, connects: 0 });
    expect(up.clients()).toEqual([]);
  });
});
