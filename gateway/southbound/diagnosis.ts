/**
 * Bus problems in words an installer can act on: what failed, where (bus,
 * unit, serial path or host:port) and the likely cause. A DEVICE_LOST that
 * says "3 polls missed (timeout)" does not tell a wrong unit id from an
 * unplugged adapter; these lines do (what libmodbus and pymodbus slaves showed us).
 */
import type { BusLinkEvent, ModbusFailure } from "../../protocols/index.js";

/** Where a bus goes: a serial line or a TCP endpoint. */
export type BusPlace =
  | { kind: "serial"; bus: string; path: string; baudRate: number; parity: string; stopBits: number }
  | { kind: "tcp"; bus: string; host: string; port: number };

export function placeText(p: BusPlace): string {
  return p.kind === "serial" ? `bus ${p.bus} (${p.path})` : `${p.host}:${p.port}`;
}

/** An errno-like code for a link error; serialport's errors carry only a message. */
export function linkErrorCode(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === "string" && code) return code;
  const m = err.message;
  if (/no such file or directory/i.test(m)) return "ENOENT";
  if (/permission denied/i.test(m)) return "EACCES";
  if (/inappropriate ioctl|not a typewriter/i.test(m)) return "ENOTTY";
  if (/resource busy|resource temporarily unavailable|cannot lock port|\bbusy\b/i.test(m)) return "EBUSY";
  if (/timed out/i.test(m)) return "ETIMEDOUT";
  return "EIO";
}

const SERIAL_CAUSES: Readonly<Record<string, string>> = {
  ENOENT: "no such serial device (adapter unplugged, or wrong path?)",
  EACCES: "permission denied (is the gateway's user in the dialout group?)",
  ENOTTY: "not a serial device",
  EBUSY: "serial device in use by another program",
  ECONNRESET: "the serial device went away (USB adapter unplugged?)",
};

const TCP_CAUSES: Readonly<Record<string, string>> = {
  ECONNREFUSED: "controller not listening (powered off, restarting, or wrong port?)",
  ETIMEDOUT: "no answer to the connection (host down, or a firewall?)",
  EHOSTUNREACH: "host unreachable (network down, or wrong address?)",
  ENETUNREACH: "network unreachable",
  ENOTFOUND: "host name not found",
  ECONNRESET: "connection closed or reset by the controller (restarting?)",
};

/** One log line (message and fields) for a link event, keyed by a reason for rate limiting. */
export function describeLinkEvent(
  place: BusPlace,
  e: BusLinkEvent,
): { reason: string; level: "warn" | "info"; fields: Record<string, unknown>; msg: string } {
  const where = placeText(place);
  const base =
    place.kind === "serial"
      ? { bus: place.bus, path: place.path }
      : { bus: place.bus, host: place.host, port: place.port };
  if (e.kind === "recovered")
    return { reason: "link-recovered", level: "info", fields: base, msg: `${where}: link up again` };
  const reason = e.kind === "lost" ? e.reason : "open";
  const code = e.error ? linkErrorCode(e.error) : reason === "remote" ? "ECONNRESET" : "EIO";
  const causes = place.kind === "serial" ? SERIAL_CAUSES : TCP_CAUSES;
  const cause = causes[code] ?? e.error?.message ?? reason;
  const fields = { ...base, code, error: e.error?.message, retryInMs: e.retryInMs };
  if (e.kind === "open-failed") {
    const what =
      place.kind === "serial"
        ? `cannot open serial device ${place.path} (bus ${place.bus})`
        : `cannot connect to ${where}`;
    return {
      reason: `link-open-${code}`,
      level: "warn",
      fields,
      msg: `${what}: ${code}: ${cause}; retrying`,
    };
  }
  return {
    reason: `link-lost-${code}`,
    level: "warn",
    fields,
    msg: `${where}: link lost: ${code}: ${cause}; reconnecting`,
  };
}

/**
 * The line for a failed poll, or null when another line already says it
 * (transport: the link's own line; closed, duplicate: our own doing).
 */
export function describePollFailure(place: BusPlace, unit: number, f: ModbusFailure): string | null {
  const where = placeText(place);
  switch (f.kind) {
    case "timeout":
      if (f.heard === "mismatched")
        return place.kind === "serial"
          ? `no matching reply from unit ${unit} on ${where}: replies came for another unit id, function or register count: another master on the line, a slow unit's late reply, or a wrong register map?`
          : `no matching reply from unit ${unit} at ${where}: replies came with another transaction id, unit id, function or register count: a slow controller's late reply, or a wrong register map?`;
      if (f.heard === "incomplete")
        return `incomplete reply from unit ${unit} ${place.kind === "serial" ? "on" : "at"} ${where}: the reply stopped short: a loose connection, or the device resetting?`;
      return place.kind === "serial"
        ? `no reply from unit ${unit} on ${where}: wrong unit id or wiring, or line settings (${place.baudRate} baud, ${place.parity} parity, ${place.stopBits} stop bit${place.stopBits === 2 ? "s" : ""}) not the device's?`
        : `no reply from unit ${unit} at ${where}: wrong unit id, or the controller is overloaded?`;
    case "crc":
      return `corrupt replies (bad CRC) from unit ${unit} on ${where}: line settings not the device's, or electrical noise (termination, shield)?`;
    case "framing":
      return `malformed replies from unit ${unit} on ${where}: another master on the line, or not a Modbus device?`;
    case "exception":
      return `unit ${unit} at ${where} refused the poll with exception ${f.code} (${f.name}): another model at this unit id, or a wrong register map?`;
    case "overflow":
      return `poll queue full on ${where}: the line cannot keep up with the poll plan`;
    default:
      return null;
  }
}
