import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { modbusRead } from "../protocols/index.js";
import { readFailureText } from "./modbus-read-failure.js";

/** A 127.0.0.1 port nothing listens on: one the OS gave and was closed again. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("linli modbus read: a failure in words", () => {
  it("a refused connection says what failed and what to check, not the syscall", async () => {
    const port = await closedPort();
    const err = await modbusRead({
      tcp: { host: "127.0.0.1", port },
      unit: 1,
      fn: 3,
      address: 0,
      count: 1,
    }).catch((e: unknown) => e);
    const said = readFailureText(err, { tcp: `127.0.0.1:${port}` }, 1);
    expect(said).toMatch(
      new RegExp(`^cannot connect to Modbus TCP 127\\.0\\.0\\.1:${port}: connection refused`),
    );
    expect(said).toContain("check the address and port");
    expect(said).not.toContain("ECONNREFUSED");
  });

  it("a serial port that is not there names the path and where to look", () => {
    // serialport says it in words, without an errno code.
    const err = new Error("Error: No such file or directory, cannot open /dev/ttyUSB9");
    expect(readFailureText(err, { serial: "/dev/ttyUSB9" }, 1)).toBe(
      "cannot open serial port /dev/ttyUSB9: no such port (check the path: ls /dev/ttyUSB* /dev/ttyACM* /dev/ttyS*)",
    );
  });

  it("what is not a failure to reach the device is left as it is", () => {
    expect(readFailureText(new RangeError("count must be 1-125"), { tcp: "h:502" }, 1)).toBeNull();
  });
});
