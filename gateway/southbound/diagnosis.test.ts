import { describe, expect, it } from "vitest";
import { configWarnings } from "../config/warnings.js";
import { type BusPlace, describeLinkEvent, describePollFailure, linkErrorCode } from "./diagnosis.js";

const serial: BusPlace = {
  kind: "serial",
  bus: "rs485-1",
  path: "/dev/ttyUSB0",
  baudRate: 9600,
  parity: "even",
  stopBits: 1,
};
const tcp: BusPlace = { kind: "tcp", bus: "tcp:10.0.0.7:502", host: "10.0.0.7", port: 502 };

describe("bus diagnosis lines", () => {
  it("serialport's message-only errors get an errno-like code", () => {
    expect(linkErrorCode(new Error("Error: No such file or directory, cannot open /dev/ttyUSB0"))).toBe(
      "ENOENT",
    );
    expect(linkErrorCode(new Error("Error: Permission denied, cannot open /dev/ttyUSB0"))).toBe("EACCES");
    expect(linkErrorCode(new Error("Inappropriate ioctl for device setting custom baud rate"))).toBe(
      "ENOTTY",
    );
    expect(linkErrorCode(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }))).toBe(
      "ECONNREFUSED",
    );
  });

  it("a lost link and its recovery", () => {
    const lost = describeLinkEvent(serial, {
      kind: "lost",
      reason: "remote",
      error: undefined,
      retryInMs: 200,
    });
    expect(lost).toMatchObject({ level: "warn", reason: "link-lost-ECONNRESET", fields: { retryInMs: 200 } });
    expect(lost.msg).toBe(
      "bus rs485-1 (/dev/ttyUSB0): link lost: ECONNRESET: the serial device went away (USB adapter unplugged?); reconnecting",
    );
    expect(describeLinkEvent(tcp, { kind: "recovered" })).toMatchObject({
      level: "info",
      msg: "10.0.0.7:502: link up again",
    });
  });

  it("each poll failure names the unit, the place and a likely cause; transport is left to the link's line", () => {
    expect(describePollFailure(tcp, 3, { kind: "timeout", attempts: 2 })).toBe(
      "no reply from unit 3 at 10.0.0.7:502: wrong unit id, or the controller is overloaded?",
    );
    // A timeout says what came instead: a cut reply, or frames answering something else.
    expect(describePollFailure(serial, 5, { kind: "timeout", attempts: 2, heard: "incomplete" })).toMatch(
      /^incomplete reply from unit 5 on bus rs485-1 \(\/dev\/ttyUSB0\): the reply stopped short/,
    );
    expect(describePollFailure(tcp, 3, { kind: "timeout", attempts: 2, heard: "mismatched" })).toMatch(
      /^no matching reply from unit 3 at 10\.0\.0\.7:502: replies came with another transaction id, unit id, function or register count: a slow controller's late reply/,
    );
    expect(describePollFailure(serial, 5, { kind: "crc", attempts: 2 })).toMatch(
      /^corrupt replies \(bad CRC\) from unit 5 on bus rs485-1 \(\/dev\/ttyUSB0\): line settings/,
    );
    expect(
      describePollFailure(serial, 5, { kind: "exception", code: 2, name: "illegal data address" }),
    ).toMatch(/refused the poll with exception 2 \(illegal data address\): another model at this unit id/);
    expect(describePollFailure(serial, 5, { kind: "transport", message: "down" })).toBeNull();
  });

  it("config check warns about a serial path that does not exist (never an error)", () => {
    const config = {
      buses: [
        { id: "rs485-1", path: "/dev/ttyUSB9" },
        { id: "rs485-2", path: "/dev/ttyS0" },
      ],
      console: { enabled: false, host: "127.0.0.1", port: 8080 },
    };
    const w = configWarnings(config as never, (p) => p === "/dev/ttyS0");
    expect(w).toEqual([
      "buses[0].path: serial device /dev/ttyUSB9 of bus rs485-1 does not exist here (adapter unplugged, or wrong path?)",
    ]);
  });

  it("config check warns that a console beyond loopback is plain HTTP, and not for a local one", () => {
    const local = { buses: [], console: { enabled: true, host: "127.0.0.1", port: 8080 } };
    expect(configWarnings(local as never)).toEqual([]);
    const lan = { buses: [], console: { enabled: true, host: "0.0.0.0", port: 8080 } };
    expect(configWarnings(lan as never)).toEqual([
      "console.host: the operators' console on 0.0.0.0:8080 is plain HTTP; logins cross the network readable (give it tls, or keep 127.0.0.1: docs/console.md)",
    ]);
  });

  it("config check warns that a device listener beyond loopback is plain MQTT, and not for a local one", () => {
    const off = { enabled: false, host: "127.0.0.1", port: 8080 };
    const local = {
      buses: [],
      console: off,
      mqtt: { listeners: [], deviceListener: { host: "127.0.0.1", port: 1884 } },
    };
    expect(configWarnings(local as never)).toEqual([]);
    const lan = {
      buses: [],
      console: off,
      mqtt: { listeners: [], deviceListener: { host: "0.0.0.0", port: 1884 } },
    };
    expect(configWarnings(lan as never)).toEqual([
      "mqtt.deviceListener.host: the device listener on 0.0.0.0:1884 is plain MQTT; device passwords cross the network readable (give it tls: docs/security.md)",
    ]);
  });
});
