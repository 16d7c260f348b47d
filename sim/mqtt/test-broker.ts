/**
 * Test helper (not a test): a real aedes broker on 127.0.0.1, ephemeral port,
 * recording every PUBLISH a client makes (topic, payload, QoS, client id and
 * username) as the broker received it. Each test starts and stops its own.
 */
import net from "node:net";
import { Aedes } from "aedes";

export interface Received {
  topic: string;
  payload: Buffer;
  qos: number;
  clientId: string;
  /** performance.now() at the broker, for ordering and timing checks. */
  at: number;
}

export interface TestBroker {
  url: string;
  port: number;
  broker: Aedes;
  received: Received[];
  /** Connected clients by id, with their username. */
  usernames: Map<string, string | undefined>;
  /** Resolves when `n` matching messages have arrived; rejects after timeoutMs. */
  waitFor(n: number, match?: (r: Received) => boolean, timeoutMs?: number): Promise<Received[]>;
  /** Publishes from the broker itself (a downlink), QoS 1. */
  publish(topic: string, payload: string | Buffer): Promise<void>;
  close(): Promise<void>;
}

export interface TestBrokerOptions {
  authenticate?: (username: string | undefined, password: string | undefined) => boolean;
  /** Default 0 (ephemeral). */
  port?: number;
}

/** A broker on a given port (to bring one back where a previous one was). */
export function startTestBrokerOn(port: number, opts: TestBrokerOptions = {}): Promise<TestBroker> {
  return startTestBroker({ ...opts, port });
}

export async function startTestBroker(opts: TestBrokerOptions = {}): Promise<TestBroker> {
  const broker = await Aedes.createBroker();
  const received: Received[] = [];
  const usernames = new Map<string, string | undefined>();
  const authenticate = opts.authenticate;
  if (authenticate) {
    broker.authenticate = (client, username, password, done) => {
      const ok = authenticate(username, password?.toString("utf8"));
      if (ok) usernames.set(client.id, username);
      if (ok) done(null, true);
      else done(Object.assign(new Error("bad credentials"), { returnCode: 4 as const }), false);
    };
  } else {
    broker.authenticate = (client, username, _password, done) => {
      usernames.set(client.id, username);
      done(null, true);
    };
  }
  let listeners: Array<() => void> = [];
  broker.on("publish", (packet, client) => {
    if (!client) return;
    received.push({
      topic: packet.topic,
      payload: Buffer.from(packet.payload),
      qos: packet.qos,
      clientId: client.id,
      at: performance.now(),
    });
    for (const l of listeners) l();
  });
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    broker.handle(socket);
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  const port = address.port;

  const waitFor = (n: number, match: (r: Received) => boolean = () => true, timeoutMs = 5_000) =>
    new Promise<Received[]>((resolve, reject) => {
      const check = () => {
        const got = received.filter(match);
        if (got.length >= n) {
          clearTimeout(timer);
          listeners = listeners.filter((l) => l !== check);
          resolve(got);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        listeners = listeners.filter((l) => l !== check);
        reject(new Error(`timed out waiting for ${n} messages (have ${received.filter(match).length})`));
      }, timeoutMs);
      if (!check()) listeners.push(check);
    });

  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    broker,
    received,
    usernames,
    waitFor,
    publish: (topic, payload) =>
      new Promise<void>((resolve, reject) => {
        broker.publish(
          {
            cmd: "publish",
            topic,
            payload: typeof payload === "string" ? Buffer.from(payload) : payload,
            qos: 1,
            retain: false,
            dup: false,
          },
          (err) => (err ? reject(err) : resolve()),
        );
      }),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}
