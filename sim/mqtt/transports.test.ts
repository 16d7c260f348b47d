/**
 * The simulator's devices reach a gateway over TLS (`mqtts://`, with the
 * gateway's CA) and over WebSocket (`ws://`): real aedes brokers behind a
 * node:tls server with a certificate made by openssl, and behind a ws server.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { Aedes } from "aedes";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWebSocketStream, WebSocketServer } from "ws";
import { Ec200 } from "./ec200.js";

function haveOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!haveOpenssl())("device transports", () => {
  const dir = mkdtempSync(join(tmpdir(), "linli-tls-"));
  let broker: Aedes;
  let tlsServer: tls.Server;
  let wss: WebSocketServer;
  let tlsPort = 0;
  let wsPort = 0;
  let cert: Buffer;
  const received: string[] = [];

  beforeAll(async () => {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=linli-test",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    cert = readFileSync(join(dir, "cert.pem"));
    broker = await Aedes.createBroker();
    broker.on("publish", (packet, client) => {
      if (client) received.push(`${client.id} ${packet.topic}`);
    });
    tlsServer = tls.createServer({ key: readFileSync(join(dir, "key.pem")), cert }, (s) => broker.handle(s));
    await new Promise<void>((r) => tlsServer.listen(0, "127.0.0.1", () => r()));
    tlsPort = (tlsServer.address() as net.AddressInfo).port;
    wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    wss.on("connection", (ws) => broker.handle(createWebSocketStream(ws) as unknown as net.Socket));
    await new Promise<void>((r) => wss.once("listening", () => r()));
    wsPort = (wss.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    for (const c of wss?.clients ?? []) c.terminate();
    await new Promise<void>((r) => (wss ? wss.close(() => r()) : r()));
    await new Promise<void>((r) => (tlsServer ? tlsServer.close(() => r()) : r()));
    await new Promise<void>((r) => (broker ? broker.close(() => r()) : r()));
    rmSync(dir, { recursive: true, force: true });
  });

  const waitFor = async (line: string) => {
    const end = Date.now() + 5_000;
    while (!received.includes(line) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    return received.includes(line);
  };

  it("mqtts:// with the gateway's CA: connects and delivers a press", async () => {
    const d = new Ec200({
      deviceId: "tls-1",
      brokerUrl: `mqtts://127.0.0.1:${tlsPort}`,
      password: "x",
      tls: { ca: cert },
      heartbeatIntervalMs: 0,
    });
    await d.start();
    expect((await d.press()).status).toBe("acked");
    expect(await waitFor("ec200-tls-1 devices/ec200/tls-1/up")).toBe(true);
    await d.stop();
  });

  it("mqtts:// without the CA: the certificate is refused", async () => {
    const d = new Ec200({
      deviceId: "tls-2",
      brokerUrl: `mqtts://127.0.0.1:${tlsPort}`,
      password: "x",
      heartbeatIntervalMs: 0,
    });
    await expect(d.start()).rejects.toThrow(/self[- ]signed/i);
    await d.stop();
  });

  it("ws:// connects and delivers a press", async () => {
    const d = new Ec200({
      deviceId: "ws-1",
      brokerUrl: `ws://127.0.0.1:${wsPort}`,
      password: "x",
      heartbeatIntervalMs: 0,
    });
    await d.start();
    expect((await d.press()).status).toBe("acked");
    expect(await waitFor("ec200-ws-1 devices/ec200/ws-1/up")).toBe(true);
    await d.stop();
  });
});
