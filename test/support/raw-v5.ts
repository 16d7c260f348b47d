/**
 * A raw MQTT 5 client for tests that must see packets as sent (mqtt.js answers PUBLISHes at
 * once): it acknowledges nothing by itself and records every packet the server writes.
 */
import net from "node:net";
import mqttPacket from "mqtt-packet";

const V5 = { protocolVersion: 5 } as const;

export interface RawV5 {
  readonly got: mqttPacket.Packet[];
  readonly closed: () => boolean;
  send(packet: mqttPacket.Packet): void;
  /** The first packet received (now or within `ms`) that matches, else throws. */
  waitFor(match: (p: mqttPacket.Packet) => boolean, ms?: number): Promise<mqttPacket.Packet>;
  destroy(): void;
}

export async function rawV5Client(
  port: number,
  login: { clientId: string; username: string; password: string },
  properties: mqttPacket.IConnectPacket["properties"] = {},
  will?: mqttPacket.IConnectPacket["will"],
): Promise<RawV5> {
  const parser = mqttPacket.parser(V5);
  const got: mqttPacket.Packet[] = [];
  let isClosed = false;
  parser.on("packet", (p) => got.push(p));
  const s = net.connect(port, "127.0.0.1");
  s.on("data", (d) => parser.parse(d));
  s.on("error", () => {});
  s.on("close", () => {
    isClosed = true;
  });
  await new Promise<void>((r) => s.once("connect", () => r()));
  const c: RawV5 = {
    got,
    closed: () => isClosed,
    send: (p) => {
      s.write(mqttPacket.generate(p, V5));
    },
    async waitFor(match, ms = 3000) {
      const until = Date.now() + ms;
      for (;;) {
        const p = got.find(match);
        if (p !== undefined) return p;
        if (Date.now() > until) throw new Error(`not received; got ${got.map((x) => x.cmd).join(",")}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    destroy: () => {
      s.destroy();
    },
  };
  c.send({
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: 5,
    clean: true,
    clientId: login.clientId,
    keepalive: 60,
    username: login.username,
    password: Buffer.from(login.password),
    properties,
    ...(will ? { will } : {}),
  });
  const connack = (await c.waitFor((p) => p.cmd === "connack")) as mqttPacket.IConnackPacket;
  if (connack.reasonCode !== 0) throw new Error(`CONNACK ${connack.reasonCode}`);
  return c;
}
