/**
 * What `linli modbus read` says when it could not read: what failed and what to check, as
 * `linli config check` says of a file it cannot read ("connect ECONNREFUSED 127.0.0.1:1502" named
 * the syscall, not the cause).
 */
import { ModbusReadError } from "../protocols/index.js";

/** The target as the integrator gave it: `tcp` "HOST:PORT" or a serial path. */
export type ReadTarget = { tcp: string } | { serial: string };

const TCP_WHY: Record<string, string> = {
  ECONNREFUSED:
    "connection refused: nothing listens on that port (check the address and port, that the device is on, and that its Modbus TCP server is enabled; the standard port is 502)",
  ECONNRESET:
    "the device closed the connection (check that it accepts connections from this host; some accept only one client at a time)",
  EHOSTUNREACH: "host unreachable (check the address, the network cable and the device's power)",
  ENETUNREACH: "network unreachable (check this host's network settings and the address)",
  ETIMEDOUT: "no answer to the connection (check the address, the network and the device's power)",
  ENOTFOUND: "unknown host name (check its spelling, or give the IP address)",
  EAI_AGAIN: "the host name could not be looked up now (check DNS, or give the IP address)",
};

const SERIAL_WHY: Record<string, string> = {
  ENOENT: "no such port (check the path: ls /dev/ttyUSB* /dev/ttyACM* /dev/ttyS*)",
  EACCES: "permission denied for this user (add it to the group owning the port, usually dialout)",
  EPERM: "permission denied for this user (add it to the group owning the port, usually dialout)",
  EBUSY: "the port is in use by another program (stop it, e.g. a running gateway on the same bus)",
};

/**
 * The failure in words; null for what is not a failure to reach or read the device (a request the
 * bus refused before sending, said as it is).
 */
export function readFailureText(err: unknown, target: ReadTarget, unit: number): string | null {
  const where = "tcp" in target ? `Modbus TCP ${target.tcp}` : `serial port ${target.serial}`;
  if (err instanceof ModbusReadError) {
    const f = err.failure;
    if (f.kind === "timeout")
      return `no answer from unit ${unit} on ${where} (check the unit id${"serial" in target ? ", the wiring, baud rate, parity and stop bits" : ""})`;
    return `reading unit ${unit} on ${where} failed: ${err.message}`;
  }
  const message = err instanceof Error ? err.message : String(err);
  // TcpLink's own connect timeout has no errno code, nor may a serial port's error (its words).
  const code = (err as NodeJS.ErrnoException | null)?.code ?? codeOf(message);
  if (code === undefined) return null;
  const why = ("tcp" in target ? TCP_WHY : SERIAL_WHY)[code];
  return `cannot ${"tcp" in target ? "connect to" : "open"} ${where}: ${why ?? message}`;
}

function codeOf(message: string): string | undefined {
  if (/ timed out$/.test(message)) return "ETIMEDOUT";
  if (/no such file or directory/i.test(message)) return "ENOENT";
  if (/permission denied/i.test(message)) return "EACCES";
  if (/resource busy|cannot lock port/i.test(message)) return "EBUSY";
  return undefined;
}
