/**
 * The upstream broker's url in the log: `mqtt://user:secret@host` is the usual way of writing
 * credentials for mqtt.js and mosquitto tools; the bridge takes them from `username`/`password`
 * only, so a url carrying them must not put the password into every reconnect's log line.
 * A real socket on 127.0.0.1 plays the upstream broker.
 */
import { createServer, type Server, type Socket } from "node:net";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../log.js";
import { UpstreamBridge } from "./upstream.js";

/** Answers every CONNECT with a CONNACK of return code `rc` (0 accepted, 5 not authorized). */
async function fakeBroker(rc: number): Promise<{ server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.once("data", () => s.write(Buffer.from([0x20, 0x02, 0x00, rc])));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, sockets };
}

const open: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of open.splice(0)) await close();
});

async function logLines(rc: number, until: RegExp): Promise<string> {
  const { server, sockets } = await fakeBroker(rc);
  const port = (server.address() as { port: number }).port;
  let text = "";
  const dest = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  });
  const b = new UpstreamBridge(
    {
      url: `mqtt://ops:s3cret-in-url@127.0.0.1:${port}`,
      site: "s1",
      clientId: "t",
      username: "ops",
      password: "s3cret-field",
      backlog: 10,
      reconnectInitialMs: 60_000,
      reconnectMaxMs: 60_000,
      keepaliveS: 30,
    },
    createLogger({ level: "debug", format: "json", destination: dest }),
    () => {},
  );
  // The broker's sockets first: the bridge's stop() would wait for a PUBACK this one never sends.
  open.push(async () => {
    for (const s of sockets) s.destroy();
    while (b.connected) await new Promise((r) => setTimeout(r, 10));
    await b.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  b.connect();
  const deadline = Date.now() + 5_000;
  while (!until.test(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(text).toMatch(until);
  return text;
}

describe("upstream url in the log", () => {
  it("a refused login logs the broker without the url's password", async () => {
    const text = await logLines(5, /upstream broker error/);
    expect(text).not.toContain("s3cret");
    expect(text).toContain("127.0.0.1:");
  });

  it("a connection logs the broker without the url's password", async () => {
    const text = await logLines(0, /upstream broker connected/);
    expect(text).not.toContain("s3cret");
  });
});
