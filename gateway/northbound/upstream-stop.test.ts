/**
 * A bridge stopped while a connection attempt is under way stays stopped. mqtt.js (5.x), ended
 * before its CONNACK, closes its stores at once and then sees the socket's close: without this, it
 * set up its reconnect timer there and reconnected for good, under the client id of the gateway
 * (a restart in the same process, or the next gateway, was then kicked off upstream in turn).
 */
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../log.js";
import { UpstreamBridge } from "./upstream.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("upstream bridge: stop", () => {
  let server: net.Server | null = null;
  const sockets = new Set<net.Socket>();
  afterEach(async () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    await new Promise((r) => server?.close(r) ?? r(undefined));
    server = null;
  });

  it("during a connection attempt (no CONNACK yet): no reconnect afterwards", async () => {
    // A broker that accepts the TCP connection and never answers the CONNECT.
    let connections = 0;
    server = net.createServer((s) => {
      connections++;
      sockets.add(s);
      s.on("error", () => {});
    });
    await new Promise<void>((r) => server?.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    const bridge = new UpstreamBridge(
      {
        url: `mqtt://127.0.0.1:${port}`,
        site: "s1",
        clientId: "gw-stop",
        backlog: 100,
        reconnectInitialMs: 20,
        reconnectMaxMs: 20,
        keepaliveS: 30,
      },
      createLogger({ level: "silent" }),
      () => {},
    );
    bridge.connect();
    for (const end = Date.now() + 5_000; connections === 0 && Date.now() < end; ) await sleep(5);
    expect(connections).toBe(1);
    await bridge.stop();
    // Many reconnect periods.
    await sleep(400);
    expect(connections).toBe(1);
    expect(bridge.stats().connects).toBe(0);
  });
});
