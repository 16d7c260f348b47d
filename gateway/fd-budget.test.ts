import { describe, expect, it } from "vitest";
import { validateConfig } from "./config/load.js";
import { FD_MARGIN, fdBudget, fdLimitWarning } from "./fd-budget.js";

const site = (extra: Record<string, unknown> = {}) => validateConfig({ site: { id: "s1" }, ...extra });

describe("connection caps against the open-file limit", () => {
  it("three MQTT listeners, the device listener, the console and metrics past LimitNOFILE=65536: a warning naming each", () => {
    const config = site({
      mqtt: {
        listeners: [{ port: 1883 }, { port: 8883 }, { port: 8083, transport: "websocket" }],
        deviceListener: { port: 1884 },
      },
      console: { enabled: true },
      buses: [{ id: "rs485-1", type: "rtu", path: "/dev/ttyUSB0" }],
    });
    const total = 3 * 20_000 + 20_000 + 512 + 64 + FD_MARGIN + 1;
    expect(fdBudget(config).total).toBe(total);
    const w = fdLimitWarning(config, () => 65_536);
    expect(w).toContain(`may need ${total} file descriptors`);
    expect(w).toContain("mqtt.listeners (3 x mqtt.maxConnections 20000) 60000");
    expect(w).toContain("mqtt.deviceListener (mqtt.maxConnections) 20000");
    expect(w).toContain("console 512");
    expect(w).toContain("metrics 64");
    expect(w).toContain(
      `margin (journal, serial ports, Modbus TCP devices, upstream, Node's own) ${FD_MARGIN + 1}`,
    );
    expect(w).toContain("this process may open 65536 (soft RLIMIT_NOFILE");
  });

  it("the default site fits the unit's 65536; lower caps fit a smaller limit; no limit known, no warning", () => {
    expect(fdLimitWarning(site(), () => 65_536)).toBeNull();
    expect(fdLimitWarning(site(), () => Number.POSITIVE_INFINITY)).toBeNull();
    expect(fdLimitWarning(site(), () => undefined)).toBeNull();
    expect(fdLimitWarning(site(), () => 4096)).toMatch(
      /^mqtt\.maxConnections: .* may need 20192 .* may open 4096/,
    );
    expect(fdLimitWarning(site({ mqtt: { maxConnections: 2000 } }), () => 4096)).toBeNull();
  });
});
