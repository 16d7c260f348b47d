/**
 * Bus benchmark, serial side: how close the RTU master gets to what
 * a wire-time-paced line can carry.
 *
 * A socat pty pair is the cable. The MFS-8 simulator runs in a child process
 * (`sim/modbus/cli.js rtu --pace`): it delays every reply by the wire time of
 * request + reply at the baud rate, so the pty behaves like the real line. The
 * master (ModbusBus + ModbusPoller, as the gateway uses them) polls 4 panels
 * with periods far shorter than the line allows (degradation accepted), so the
 * line is saturated, and counts successful polls per second.
 *
 * Theoretical maximum: 1000 / (request + reply wire time + 2 x t3.5), with the
 * simulator answering at once (turnaround 0): the line's own limit.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { SerialLink } from "../protocols/links/index.js";
import { lineCapacityReadsPerSec, ModbusBus, ModbusPoller } from "../protocols/modbus/index.js";
import { openPtyPair, socatMissingReason } from "../sim/modbus/pty.js";

export interface RtuLineResult {
  baud: number;
  theoreticalPollsPerSec: number;
  achievedPollsPerSec: number;
  ratio: number;
  timeouts: number;
  crcErrors: number;
  utilisation: number;
}

const UNITS = [1, 2, 3, 4];
const REGISTERS = 14;

export function rtuSkipReason(): string | undefined {
  return socatMissingReason();
}

function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`simulator did not start: ${out}`)), timeoutMs);
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = pattern.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    });
    child.once("exit", (code) => reject(new Error(`simulator exited (${code}): ${out}`)));
  });
}

export async function runRtuLine(baud: number, seconds: number): Promise<RtuLineResult> {
  const pty = await openPtyPair();
  const sim = spawn(
    process.execPath,
    [
      "dist/sim/modbus/cli.js",
      "rtu",
      "--pty-link",
      pty.a,
      "--units",
      UNITS.join(","),
      "--baud",
      String(baud),
      "--pace",
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  try {
    await waitForLine(sim, /MFS-8 units .* on \S+/, 10_000);
    const settings = { baudRate: baud, parity: "even" as const, stopBits: 1 as const, dataBits: 8 as const };
    const bus = new ModbusBus({
      name: `bench-${baud}`,
      link: new SerialLink({ path: pty.b, ...settings }),
      mode: "rtu",
      baudRate: baud,
      bitsPerChar: 11,
      timeoutMs: 200,
      retries: 0,
    });
    let ok = 0;
    const poller = new ModbusPoller({
      bus,
      onResult: (r) => {
        if (r.ok) ok++;
      },
      line: { settings, turnaroundMs: 0, acceptDegradation: true },
    });
    for (const unit of UNITS) {
      poller.add({
        id: `panel-${unit}`,
        unit,
        fn: 3,
        periodMs: 5,
        ranges: [{ address: 0, count: REGISTERS }],
      });
    }
    await bus.start();
    poller.start();
    // Warm-up: let the pty and both event loops settle.
    await new Promise((r) => setTimeout(r, 1000));
    const okAtStart = ok;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const elapsed = (performance.now() - t0) / 1000;
    const achieved = (ok - okAtStart) / elapsed;
    const stats = bus.stats();
    poller.stop();
    await bus.close();
    const theoretical = lineCapacityReadsPerSec(settings, REGISTERS, 0);
    return {
      baud,
      theoreticalPollsPerSec: theoretical,
      achievedPollsPerSec: achieved,
      ratio: achieved / theoretical,
      timeouts: stats.timeouts,
      crcErrors: stats.crcErrors,
      utilisation: stats.utilisation,
    };
  } finally {
    sim.kill("SIGTERM");
    await pty.kill();
  }
}
