import { describe, expect, it } from "vitest";
import { hashPassword } from "../broker/credentials.js";
import { parseConfigText } from "./load.js";
import {
  configWarnings,
  HASH_CHECK_BUDGET,
  PLAIN_TEXT_NAMED_MAX,
  plainTextPasswordAccounts,
  plainTextPasswordWarning,
  siteFileWarning,
  weakPasswordWarnings,
} from "./warnings.js";

const HASH = "scrypt$16384$8$1$veGGObTYuYFy4XUmy3XXsQ==$7Xw3mVcxlwIyv/IFOscZVsZT5oS4QNYxGsx/eO9SAa4=";

function site(pendants: number, password: (i: number) => string): string {
  const lines = ["site:", "  id: s1", "operators:", "  - name: desk", `    password: "${HASH}"`, "devices:"];
  for (let i = 1; i <= pendants; i++)
    lines.push(`  - id: p${i}`, "    model: ec200", `    password: "${password(i)}"`);
  return `${lines.join("\n")}\n`;
}

describe("plain-text password warning", () => {
  it("names each account with a plain password, never the password, and none with a hash", () => {
    const config = parseConfigText(
      site(3, (i) => (i === 2 ? HASH : `secret-${i}`)),
      "site.yaml",
      {},
    );
    expect(plainTextPasswordAccounts(config)).toEqual(["p1", "p3"]);
    const warning = plainTextPasswordWarning(config);
    expect(warning).toContain("for p1, p3:");
    expect(warning).not.toContain("secret");
  });

  it("names the first few of a large site and counts the rest", () => {
    const config = parseConfigText(
      site(2000, (i) => `secret-${i}`),
      "site.yaml",
      {},
    );
    const warning = plainTextPasswordWarning(config) ?? "";
    expect(warning).toContain(`p${PLAIN_TEXT_NAMED_MAX} and ${2000 - PLAIN_TEXT_NAMED_MAX} more:`);
    expect(warning).not.toContain(`p${PLAIN_TEXT_NAMED_MAX + 1},`);
    expect(warning.length).toBeLessThan(300);
  });

  it("is null when every password is a hash", () => {
    expect(
      plainTextPasswordWarning(
        parseConfigText(
          site(2, () => HASH),
          "site.yaml",
          {},
        ),
      ),
    ).toBeNull();
  });
});

describe("listeners without TLS beyond 127.0.0.1", () => {
  it("warns for every such MQTT listener (TCP or WebSocket), not for a local one or one with TLS", () => {
    const config = parseConfigText(
      [
        "site:",
        "  id: s1",
        "mqtt:",
        "  listeners:",
        "    - host: 127.0.0.1",
        "      port: 1883",
        "    - host: 0.0.0.0",
        "      port: 1884",
        "    - host: 10.0.0.5",
        "      port: 8080",
        "      transport: websocket",
        "    - host: 0.0.0.0",
        "      port: 8883",
        "      tls: { cert: c.pem, key: k.pem }",
        "",
      ].join("\n"),
      "site.yaml",
      {},
    );
    expect(configWarnings(config, () => true)).toEqual([
      "mqtt.listeners[1].host: the MQTT listener on 0.0.0.0:1884 has no TLS; passwords and alerts cross the network readable (give it tls, or keep it on 127.0.0.1: docs/security.md)",
      "mqtt.listeners[2].host: the MQTT-over-WebSocket listener on 10.0.0.5:8080 has no TLS; passwords and alerts cross the network readable (give it tls, or keep it on 127.0.0.1: docs/security.md)",
    ]);
  });
});

describe("well-known and trivial passwords", () => {
  const accounts = (operators: Array<[string, string]>, devices: Array<[string, string]> = []) =>
    parseConfigText(
      [
        "site:",
        "  id: s1",
        "operators:",
        ...operators.map(([n, p]) => `  - name: ${n}\n    password: "${p}"`),
        devices.length ? "devices:" : "devices: []",
        ...devices.map(([n, p]) => `  - id: ${n}\n    model: ec200\n    password: "${p}"`),
        "",
      ].join("\n"),
      "site.yaml",
      {},
    );

  it("names the demo's, the user name, common and short plain passwords, never the password", async () => {
    const w = await weakPasswordWarnings(
      accounts(
        [
          ["operator", "demo-operator"],
          ["desk", "desk"],
          ["night", "Admin"],
          ["ok", "a long enough phrase"],
        ],
        [
          ["p1", "demo-p1"],
          ["p2", "short"],
          ["p3", "9f8e7d6c5b4a"],
        ],
      ),
    );
    expect(w).toEqual([
      expect.stringMatching(/^passwords of operator, p1: the demo's well-known password/),
      expect.stringMatching(/^passwords of desk: the user name, trivial to guess/),
      expect.stringMatching(/^passwords of night: a common password/),
      expect.stringMatching(/^passwords of p2: shorter than 8 characters/),
    ]);
    expect(w.join("\n")).not.toMatch(/demo-operator|Admin|short,/);
  });

  it("finds them behind a hash by trying a handful of candidates; a strong hash passes", async () => {
    const cheap = { log2N: 10 };
    const config = accounts([
      ["operator", await hashPassword("demo-operator", cheap)],
      ["desk", await hashPassword("desk", cheap)],
      ["night", await hashPassword("admin", cheap)],
      ["ok", await hashPassword("a long enough phrase", cheap)],
    ]);
    expect(await weakPasswordWarnings(config)).toEqual([
      expect.stringMatching(/^passwords of operator: the demo's/),
      expect.stringMatching(/^passwords of desk: the user name/),
      expect.stringMatching(/^passwords of night: a common password/),
    ]);
  });

  it("spends at most its scrypt budget on hashes and counts the accounts it left", async () => {
    const hash = await hashPassword("demo-operator", { log2N: 10 });
    const config = accounts([
      ["operator", hash],
      ["b", hash],
      ["c", hash],
    ]);
    // Room for one account's candidates: the others are counted, not checked.
    const w = await weakPasswordWarnings(config, 1024 * 8 * 5);
    expect(w).toEqual([
      expect.stringMatching(/^passwords of operator: the demo's/),
      expect.stringMatching(/^hashed passwords of 2 account\(s\) not checked/),
    ]);
    expect(HASH_CHECK_BUDGET).toBe(64 * 16384 * 8);
  });
});

describe("bus reply timeout against the datasheets", () => {
  const bus = (timeout: string, models: string[]) =>
    parseConfigText(
      [
        "site: { id: s1 }",
        "buses:",
        `  - { id: rs485, type: rtu, path: /dev/ttyS0, timeout: ${timeout} }`,
        "devices:",
        ...models.map((m, i) => `  - { id: d${i}, model: ${m}, bus: rs485, unit: ${i + 1} }`),
      ].join("\n"),
      "site.yaml",
      {},
    );

  it('MFS-8: "allow at least 100 ms before calling a request lost"; LV-4: "answers within 80 ms"', () => {
    expect(configWarnings(bus("90ms", ["mfs8"]), () => true)).toEqual([
      "buses[0].timeout: 90 ms on bus rs485 is shorter than the MFS-8 datasheet asks a master to wait for a reply (100 ms): its replies would be called lost",
    ]);
    expect(configWarnings(bus("70ms", ["lv4"]), () => true)).toEqual([
      "buses[0].timeout: 70 ms on bus rs485 is shorter than the LV-4 datasheet asks a master to wait for a reply (80 ms): its replies would be called lost",
    ]);
    // The bus's slowest device decides; at the figure itself nothing is said.
    expect(configWarnings(bus("90ms", ["lv4", "mfs8"]), () => true)).toHaveLength(1);
    expect(configWarnings(bus("100ms", ["lv4", "mfs8"]), () => true)).toEqual([]);
    expect(configWarnings(bus("200ms", ["mfs8"]), () => true)).toEqual([]);
  });
});

describe("console beyond the box", () => {
  const withConsole = (tls: string) =>
    parseConfigText(
      `${site(1, () => HASH)}console:\n  enabled: true\n  host: 0.0.0.0\n${tls}`,
      "site.yaml",
      {},
    );

  it("warns about plain HTTP, not once the console has tls; names missing certificate files", () => {
    const plain = configWarnings(withConsole(""), () => true);
    expect(plain.some((w) => w.startsWith("console.host:"))).toBe(true);
    const tls = "  tls:\n    cert: /etc/linli/console.crt\n    key: /etc/linli/console.key\n";
    expect(configWarnings(withConsole(tls), () => true).filter((w) => w.startsWith("console"))).toEqual([]);
    expect(configWarnings(withConsole(tls), () => false).filter((w) => w.startsWith("console"))).toEqual([
      "console.tls.cert: /etc/linli/console.crt does not exist here (the gateway will not start without it)",
      "console.tls.key: /etc/linli/console.key does not exist here (the gateway will not start without it)",
    ]);
  });
});

describe("/metrics beyond the box", () => {
  const withMetrics = (extra: string, host = "0.0.0.0") =>
    parseConfigText(
      `${site(1, () => HASH)}metrics:\n  host: ${host}\n  port: 9464\n${extra}`,
      "site.yaml",
      {},
    );
  const metricsWarnings = (
    c: ReturnType<typeof withMetrics>,
    exists = true,
    mode: number | null = 0o100600,
  ) =>
    configWarnings(
      c,
      () => exists,
      () => mode,
    ).filter((w) => w.startsWith("metrics"));
  const auth = "  auth:\n    type: bearer\n    tokenFile: /etc/linli/metrics.token\n";
  const tls = "  tls:\n    cert: /etc/linli/m.crt\n    key: /etc/linli/m.key\n";

  it("warns when /metrics listens beyond loopback without auth, and without tls", () => {
    expect(metricsWarnings(withMetrics(""))).toEqual([
      "metrics.host: /metrics on 0.0.0.0:9464 is open to anyone who can reach it (device and alert counts, rejections, the journal's state); give it metrics.auth (a bearer token or basic auth from a file), or keep 127.0.0.1: docs/metrics.md",
      "metrics.host: /metrics on 0.0.0.0:9464 is plain HTTP; its figures cross the network readable (give it metrics.tls, or keep 127.0.0.1: docs/metrics.md)",
    ]);
    expect(metricsWarnings(withMetrics(auth))).toEqual([
      "metrics.host: /metrics on 0.0.0.0:9464 is plain HTTP; its credentials and figures cross the network readable (give it metrics.tls, or keep 127.0.0.1: docs/metrics.md)",
    ]);
    expect(metricsWarnings(withMetrics(auth + tls))).toEqual([]);
    expect(metricsWarnings(withMetrics("", "127.0.0.1"))).toEqual([]);
    expect(metricsWarnings(withMetrics("  enabled: false\n"))).toEqual([]);
  });

  it("names a missing or world-readable secret file and missing certificate files", () => {
    expect(metricsWarnings(withMetrics(auth + tls), false)).toEqual([
      "metrics.auth.tokenFile: /etc/linli/metrics.token does not exist here (the gateway will not start without it)",
      "metrics.tls.cert: /etc/linli/m.crt does not exist here (the gateway will not start without it)",
      "metrics.tls.key: /etc/linli/m.key does not exist here (the gateway will not start without it)",
    ]);
    const basic =
      "  auth:\n    type: basic\n    username: prometheus\n    passwordFile: /etc/linli/metrics.pw\n";
    expect(metricsWarnings(withMetrics(basic + tls), true, 0o100644)).toEqual([
      "metrics.auth.passwordFile: /etc/linli/metrics.pw can be read by other users of this box (mode 644); chmod 600 it",
    ]);
  });

  it("refuses a basic-auth username with a colon and an auth without its file", () => {
    expect(() => withMetrics("  auth:\n    type: basic\n    username: a:b\n    passwordFile: /x\n")).toThrow(
      /metrics\.auth\.username/,
    );
    expect(() => withMetrics("  auth:\n    type: bearer\n")).toThrow(/metrics\.auth\.tokenFile/);
  });
});

describe("a site file others can read", () => {
  it("warns when it holds passwords and every user can read it, not when it is private or holds none", () => {
    const withSecret = parseConfigText(
      site(1, () => HASH),
      "site.yaml",
      {},
    );
    const none = parseConfigText("site:\n  id: s1\n", "site.yaml", {});
    expect(siteFileWarning("/etc/linli/site.yaml", withSecret, () => 0o100644)).toBe(
      "/etc/linli/site.yaml can be read by every user of this box (mode 644) and holds passwords; chmod o-r it (docs/security.md)",
    );
    expect(siteFileWarning("/etc/linli/site.yaml", withSecret, () => 0o100640)).toBeNull();
    expect(siteFileWarning("/etc/linli/site.yaml", none, () => 0o100644)).toBeNull();
    expect(siteFileWarning("/etc/linli/site.yaml", withSecret, () => null)).toBeNull();
  });
});

describe("upstream broker without TLS", () => {
  const withUpstream = (url: string) =>
    parseConfigText(
      `${site(1, () => HASH)}northbound:\n  upstream:\n    url: ${url}\n    username: linli\n    password: x\n`,
      "site.yaml",
      {},
    );
  const upstreamWarnings = (url: string) =>
    configWarnings(withUpstream(url), () => true).filter((w) => w.startsWith("northbound.upstream"));

  it("warns about mqtt:// beyond the box, not about mqtts:// nor a broker on the box", () => {
    expect(upstreamWarnings("mqtt://ops-broker.example:1883")).toEqual([
      "northbound.upstream.url: the upstream broker ops-broker.example is reached without TLS; its password, the alerts and the operator requests the gateway takes from it (acknowledge, shelve, out of service) cross the network readable and forgeable (use mqtts://: docs/security.md)",
    ]);
    expect(upstreamWarnings("tcp://10.0.0.5:1883")).toHaveLength(1);
    expect(upstreamWarnings("mqtts://ops-broker.example:8883")).toEqual([]);
    expect(upstreamWarnings("mqtt://127.0.0.1:1883")).toEqual([]);
    expect(upstreamWarnings("mqtt://[::1]:1883")).toEqual([]);
  });
});
