/**
 * `metrics.auth` and `metrics.tls` on a real gateway (docs/metrics.md "Protecting /metrics"):
 * /metrics answers 401 without the configured bearer token or basic credentials (counted and
 * logged), 200 with them; /healthz and /readyz stay open but say their detail only to an
 * authorised request; the secret file is re-read at a reload (a file that cannot be read keeps the
 * current secret); a start whose secret file is missing, empty or short is refused; over TLS the
 * same holds on https, and an address banned for logins in both scopes (closed at accept by the
 * MQTT listeners) is still served: only its connection rate is applied before the handshake.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { validateConfig } from "../gateway/config/load.js";
import type { ConfigInput } from "../gateway/config/schema.js";
import type { Gateway } from "../gateway/gateway.js";
import { makeTestPki, type TestPki } from "./support/certs.js";
import { startGateway, testConfig } from "./support/harness.js";
import { suiteTempDir } from "./support/temp-dir.js";

const TOKEN = "0123456789abcdef0123456789abcdef";

interface Reply {
  status: number;
  body: string;
  challenge: string | undefined;
}

function get(
  gw: Gateway,
  path: string,
  authorization?: string,
  tls?: { ca: string },
  localAddress = "127.0.0.1",
): Promise<Reply> {
  const addr = gw.metricsAddress;
  if (!addr) throw new Error("no metrics server");
  const headers = authorization === undefined ? {} : { authorization };
  return new Promise((resolve, reject) => {
    const opts = { host: addr.host, port: addr.port, path, agent: false as const, headers, localAddress };
    const onReply = (res: import("node:http").IncomingMessage) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          body,
          challenge: res.headers["www-authenticate"] as string | undefined,
        }),
      );
    };
    const req = tls
      ? httpsRequest({ ...opts, ca: tls.ca, servername: "localhost" }, onReply)
      : httpRequest(opts, onReply);
    req.on("error", reject);
    req.end();
  });
}

/** An MQTT CONNECT naming no account, from `localAddress`: a failed login in both scopes. */
function unknownLogin(port: number, localAddress: string, i: number): Promise<void> {
  const field = (t: string) => {
    const b = Buffer.from(t);
    return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
  };
  const body = Buffer.concat([
    field("MQTT"),
    Buffer.from([4, 0xc2, 0, 30]),
    field(`scan-${i}`),
    field(`nobody-${i}`),
    field("x"),
  ]);
  const packet = Buffer.concat([Buffer.from([0x10, body.length]), body]);
  return new Promise((resolve) => {
    const s = tcpConnect({ host: "127.0.0.1", port, localAddress }, () => s.write(packet));
    s.on("data", () => s.destroy());
    s.on("error", () => {});
    s.on("close", () => resolve());
  });
}

const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString("base64")}`;

describe("metrics.auth", () => {
  const dir = suiteTempDir("linli-metrics-auth-");
  let gw: Gateway | null = null;
  let pki: TestPki | null = null;

  afterEach(async () => {
    await gw?.stop();
    gw = null;
  });
  afterAll(() => pki?.remove());

  const secretFile = (name: string, content: string) => {
    const f = join(dir, name);
    writeFileSync(f, content, { mode: 0o600 });
    return f;
  };
  const withAuth = (auth: unknown, extra: Record<string, unknown> = {}): ConfigInput =>
    testConfig({ metrics: { host: "127.0.0.1", port: 0, auth, ...extra } } as Partial<ConfigInput>);

  it("bearer: /metrics needs the token; health stays open without detail; refusals are counted", async () => {
    const tokenFile = secretFile("bearer.token", `${TOKEN}\n`); // a trailing newline, as echo writes it
    gw = await startGateway({ config: withAuth({ type: "bearer", tokenFile }) });

    const none = await get(gw, "/metrics");
    expect(none.status).toBe(401);
    expect(none.challenge).toBe('Bearer realm="linli metrics"');
    expect(none.body).not.toContain("linli_");
    expect((await get(gw, "/metrics", `Bearer ${TOKEN.slice(0, -1)}x`)).status).toBe(401);
    expect((await get(gw, "/metrics", `Bearer ${TOKEN}extra`)).status).toBe(401);
    expect((await get(gw, "/metrics", basic("x", TOKEN))).status).toBe(401);
    expect((await get(gw, "/metrics", TOKEN)).status).toBe(401);

    const ok = await get(gw, "/metrics", `Bearer ${TOKEN}`);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatch(
      /^linli_rejections_total\{model="connection",reason="metrics-unauthorized"\} 5$/m,
    );
    // The scheme's case does not matter (RFC 9110).
    expect((await get(gw, "/metrics", `bearer ${TOKEN}`)).status).toBe(200);

    // Liveness and readiness answer probes that carry no credentials; the detail only with them.
    expect(await get(gw, "/healthz")).toMatchObject({ status: 200, body: "ok\n" });
    expect(await get(gw, "/readyz")).toMatchObject({ status: 200, body: "ready\n" });
    const stopping = gw.stop();
    const notReady = await get(gw, "/readyz").catch(() => null);
    if (notReady !== null) expect(notReady).toMatchObject({ status: 503, body: "not ready\n" });
    await stopping;
    gw = null;
  });

  it("the readiness detail goes to authorised requests", async () => {
    const tokenFile = secretFile("detail.token", TOKEN);
    gw = await startGateway({ config: withAuth({ type: "bearer", tokenFile }) });
    const g = gw as unknown as { stopping: unknown; notReadyReason(): string | null };
    const real = g.notReadyReason.bind(gw);
    g.notReadyReason = () => "degraded: journal /var/lib/linli/journal ENOSPC";
    expect(await get(gw, "/readyz")).toMatchObject({ status: 503, body: "not ready\n" });
    expect(await get(gw, "/readyz", `Bearer ${TOKEN}`)).toMatchObject({
      status: 503,
      body: "not ready: degraded: journal /var/lib/linli/journal ENOSPC\n",
    });
    g.notReadyReason = real;
  });

  it("basic: the username and the password from the file", async () => {
    const passwordFile = secretFile("basic.pw", "  correct-horse-battery-staple  ");
    gw = await startGateway({
      config: withAuth({ type: "basic", username: "prometheus", passwordFile }),
    });
    const none = await get(gw, "/metrics");
    expect(none.status).toBe(401);
    expect(none.challenge).toBe('Basic realm="linli metrics", charset="UTF-8"');
    expect((await get(gw, "/metrics", basic("prometheus", "correct-horse-battery-stapl"))).status).toBe(401);
    expect((await get(gw, "/metrics", basic("grafana", "correct-horse-battery-staple"))).status).toBe(401);
    expect((await get(gw, "/metrics", "Bearer correct-horse-battery-staple")).status).toBe(401);
    expect((await get(gw, "/metrics", basic("prometheus", "correct-horse-battery-staple"))).status).toBe(200);
  });

  it("a reload re-reads the secret file; one that cannot be read keeps the current secret", async () => {
    const tokenFile = secretFile("rotate.token", TOKEN);
    const config = withAuth({ type: "bearer", tokenFile });
    gw = await startGateway({ config });
    const next = "fedcba9876543210fedcba9876543210";
    writeFileSync(tokenFile, next);
    const r = await gw.reload(validateConfig(config, "test"));
    expect(r).toMatchObject({ result: "applied", secrets: { reloaded: 1, failed: [] } });
    expect((await get(gw, "/metrics", `Bearer ${TOKEN}`)).status).toBe(401);
    expect((await get(gw, "/metrics", `Bearer ${next}`)).status).toBe(200);

    writeFileSync(tokenFile, "short");
    const bad = await gw.reload(validateConfig(config, "test"));
    expect(bad).toMatchObject({ result: "applied", secrets: { reloaded: 0 } });
    const failed = bad.result === "applied" ? bad.secrets.failed : [];
    expect(failed).toEqual([
      `metrics.auth.tokenFile: the secret in ${tokenFile} is shorter than 16 characters (make one with: openssl rand -hex 32 > ${tokenFile})`,
    ]);
    expect(failed.join()).not.toContain("short\n");
    expect((await get(gw, "/metrics", `Bearer ${next}`)).status).toBe(200);
  });

  it("a start whose secret file is missing, empty or short is refused, naming the file, never the secret", async () => {
    const missing = join(dir, "missing.token");
    await expect(startGateway({ config: withAuth({ type: "bearer", tokenFile: missing }) })).rejects.toThrow(
      `metrics.auth.tokenFile: cannot read ${missing}: ENOENT`,
    );
    const empty = secretFile("empty.token", " \n");
    await expect(startGateway({ config: withAuth({ type: "bearer", tokenFile: empty }) })).rejects.toThrow(
      `the secret in ${empty} is empty`,
    );
    const short = secretFile("short.pw", "hunter2");
    const err = await startGateway({
      config: withAuth({ type: "basic", username: "prometheus", passwordFile: short }),
    }).catch((e: unknown) => e as Error);
    expect(String(err)).toContain(
      `metrics.auth.passwordFile: the secret in ${short} is shorter than 16 characters`,
    );
    expect(String(err)).not.toContain("hunter2");
    const unreadable = secretFile("unreadable.token", TOKEN);
    chmodSync(unreadable, 0o000);
    if (process.getuid?.() !== 0)
      await expect(
        startGateway({ config: withAuth({ type: "bearer", tokenFile: unreadable }) }),
      ).rejects.toThrow(`cannot read ${unreadable}: EACCES`);
  });

  it("metrics.tls serves https, with the same credentials", async () => {
    pki ??= makeTestPki();
    const tokenFile = secretFile("tls.token", TOKEN);
    gw = await startGateway({
      config: withAuth({ type: "bearer", tokenFile }, { tls: { cert: pki.serverCert, key: pki.serverKey } }),
    });
    const { readFileSync } = await import("node:fs");
    const ca = readFileSync(pki.ca, "utf8");
    expect((await get(gw, "/metrics", undefined, { ca })).status).toBe(401);
    expect((await get(gw, "/metrics", `Bearer ${TOKEN}`, { ca })).status).toBe(200);
    await expect(get(gw, "/healthz")).rejects.toThrow(); // plain HTTP into TLS: no answer
    const r = await gw.reload(
      validateConfig(
        withAuth({ type: "bearer", tokenFile }, { tls: { cert: pki.serverCert, key: pki.serverKey } }),
        "test",
      ),
    );
    expect(r).toMatchObject({ result: "applied", certificates: { reloaded: 1, failed: [] } });
  });

  it("over TLS a login-banned address keeps its scrapes; only its connection rate is applied before the handshake", async () => {
    pki ??= makeTestPki();
    const tokenFile = secretFile("ban.token", TOKEN);
    const burst = 20;
    gw = await startGateway({
      config: testConfig({
        metrics: {
          host: "127.0.0.1",
          port: 0,
          auth: { type: "bearer", tokenFile },
          tls: { cert: pki.serverCert, key: pki.serverKey },
        },
        limits: { login: { attemptsPerSecond: 1, attemptBurst: burst } },
      } as Partial<ConfigInput>),
    });
    const g = gw;
    const { readFileSync } = await import("node:fs");
    const ca = readFileSync(pki.ca, "utf8");
    // An office behind one NAT address: ten logins naming no account ban it in both scopes, so
    // the MQTT listeners close it at accept.
    const nat = "127.0.0.40";
    for (let i = 0; i < 10; i++) await unknownLogin(g.mqttPort, nat, i);
    expect(g.counters.rejected("auth", "ban-started")).toBe(2);
    await unknownLogin(g.mqttPort, nat, 10);
    expect(g.counters.rejected("connection", "address-banned")).toBe(1);

    // The scraper behind it still gets its scrapes and health checks, over TLS, with the token.
    const scrape = await get(g, "/metrics", `Bearer ${TOKEN}`, { ca }, nat);
    expect(scrape.status).toBe(200);
    expect(scrape.body).toMatch(/^linli_rejections_total\{model="auth",reason="ban-started"\} 2$/m);
    expect((await get(g, "/healthz", undefined, { ca }, nat)).status).toBe(200);
    expect((await get(g, "/metrics", undefined, { ca }, nat)).status).toBe(401);
    expect(g.counters.rejected("connection", "address-banned")).toBe(1);

    // Its connection rate still bites before the handshake: of 30 at once, what is left of its
    // burst (ten logins and three requests took 13; the refused one none) and the token or two the rate adds.
    const rateLimited = g.counters.rejected("connection", "address-rate-limited");
    const results = await Promise.all(
      Array.from({ length: 30 }, () =>
        get(g, "/healthz", undefined, { ca }, nat).then(
          (r) => r.status,
          () => 0,
        ),
      ),
    );
    const served = results.filter((s) => s === 200).length;
    expect(served).toBeGreaterThan(0);
    expect(served).toBeLessThanOrEqual(burst - 13 + 3);
    expect(g.counters.rejected("connection", "address-rate-limited") - rateLimited).toBe(30 - served);
  });
});
