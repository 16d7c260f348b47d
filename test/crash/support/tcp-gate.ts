/**
 * A TCP pass-through on 127.0.0.1 that can refuse connections: the gateway
 * reaches the upstream mosquitto through it, so that after mosquitto restarts
 * the test's recorder is subscribed BEFORE the gateway reconnects (otherwise
 * what the gateway sends in its first milliseconds back could reach no one, and
 * a missing message would be the harness's race, not the gateway's fault).
 * While closed, new connections are reset at once; pairs end together.
 */
import net from "node:net";

export class TcpGate {
  private server: net.Server | null = null;
  private readonly pairs = new Set<net.Socket>();
  open = true;
  refused = 0;

  constructor(private readonly targetPort: number) {}

  async listen(): Promise<number> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return (server.address() as net.AddressInfo).port;
  }

  private accept(client: net.Socket): void {
    client.on("error", () => {});
    if (!this.open) {
      this.refused++;
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(this.targetPort, "127.0.0.1");
    upstream.on("error", () => {});
    this.pairs.add(client);
    this.pairs.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(client);
      this.pairs.delete(upstream);
    };
    client.on("close", end);
    upstream.on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  async close(): Promise<void> {
    this.open = false;
    for (const s of this.pairs) s.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
