import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Fleet } from "./fleet.js";
import { startTestBroker, type TestBroker } from "./mqtt/test-broker.js";
import { scaleSite } from "./site.js";

/**
 * A gateway whose per-address login limit is smaller than the fleet (docs/security.md: beyond the
 * burst a connection is closed at accept, before a byte is read), in front of a test broker. It
 * refuses until `open()`: a window on the clock closed early on a loaded machine, and late first
 * attempts were then accepted.
 */
async function rateLimitedFront(broker: TestBroker, burst: number) {
  let accepted = 0;
  let refusing = true;
  const start = Date.now();
  const attempts: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    attempts.push(Date.now() - start);
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    if (accepted >= burst && refusing) {
      socket.resetAndDestroy();
      return;
    }
    accepted++;
    const upstream = net.createConnection({ host: "127.0.0.1", port: broker.port });
    upstream.on("error", () => socket.destroy());
    socket.on("close", () => upstream.destroy());
    upstream.on("close", () => socket.destroy());
    socket.pipe(upstream).pipe(socket);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    attempts,
    /** From now on every login passes: a retry would connect. */
    open: () => {
      refusing = false;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe("attaching a fleet the gateway partly refuses", () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
  });

  it("a device counted as failed is stopped: it does not connect behind the report's back", async () => {
    const broker = await startTestBroker();
    closers.push(() => broker.close());
    // 50 devices, 10 logins accepted, then refused until the attach has reported: retries would pass.
    const front = await rateLimitedFront(broker, 10);
    closers.push(front.close);
    const site = scaleSite({ households: 25, seed: 1, host: "127.0.0.1", port: 1 });
    const fleet = new Fleet({ site, brokerUrl: front.url, seed: 1, heartbeats: false });
    closers.push(() => fleet.stop());
    const result = await fleet.attach();
    expect(result.connected).toBe(10);
    expect(result.failed).toHaveLength(40);
    // What the report says is what is there: the fleet the scenario drives is the connected part.
    expect(fleet.mqtt.size).toBe(10);
    expect([...fleet.mqtt.values()].every((d) => d.online)).toBe(true);
    // Three reconnect periods (1 s each) later, nobody else has tried again.
    front.open();
    const attemptsAfterAttach = front.attempts.length;
    await new Promise((r) => setTimeout(r, 3_000));
    expect(front.attempts.length).toBe(attemptsAfterAttach);
    expect(broker.broker.connectedClients).toBe(10);
  });
});

describe("a stop while the fleet attaches", () => {
  it("no device is tried after the stop: only those under way finish, the rest are counted", async () => {
    const broker = await startTestBroker();
    try {
      const site = scaleSite({ households: 200, seed: 1, host: "127.0.0.1", port: 1 });
      const fleet = new Fleet({
        site,
        brokerUrl: broker.url,
        seed: 1,
        heartbeats: false,
        connectConcurrency: 10,
      });
      let stop = false;
      const result = await fleet.attach(
        (connected) => {
          if (connected >= 20) stop = true; // SIGTERM after 20 of the 400
        },
        () => stop,
      );
      // The ten under way when the stop came may finish; none of the others start.
      expect(result.connected).toBeGreaterThanOrEqual(20);
      expect(result.connected).toBeLessThan(20 + 10);
      expect(result.notAttempted).toBe(400 - result.connected - result.failed.length);
      expect(broker.broker.connectedClients).toBe(result.connected);
      await fleet.stop();
    } finally {
      await broker.close();
    }
  });
});

describe("connections the gateway closes", () => {
  it("are counted once each, not the simulator's own churn or stop", async () => {
    const broker = await startTestBroker();
    try {
      const site = scaleSite({ households: 2, seed: 1, host: "127.0.0.1", port: 1 });
      const fleet = new Fleet({ site, brokerUrl: broker.url, seed: 1, heartbeats: false });
      const result = await fleet.attach();
      expect(result.connected).toBe(4);
      const [first, second] = [...fleet.mqtt.values()];
      // The gateway's end closes one device's connection: it reconnects.
      const clients = (broker.broker as unknown as { clients: Record<string, { close(): void }> }).clients;
      clients[first?.clientId ?? ""]?.close();
      await new Promise<void>((r) => first?.once("online", () => r()));
      expect(fleet.closedByGateway).toBe(1);
      // The simulator's own churn and its stop are not the gateway's doing.
      await second?.goOffline();
      await fleet.stop();
      expect(fleet.closedByGateway).toBe(1);
    } finally {
      await broker.close();
    }
  });
});
