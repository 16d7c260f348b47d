/**
 * The Modbus bus benchmark (also run by `npm run bench`; alone:
 * `npm run build && node dist/bench/bus.js [--seconds S] [--kiosks N]`).
 *   serial: polls/s achieved on a wire-time-paced pty at 9600 and 115200 baud
 *           against the line's theoretical maximum (target >= 90 % at 9600)
 *   tcp:    N kiosks (default 500) polled once a second: p99 poll lateness
 *           (target < 20 ms) and the gateway's CPU
 */
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { type RtuLineResult, rtuSkipReason, runRtuLine } from "./bus-rtu.js";
import { type KioskResult, runKiosks } from "./bus-tcp.js";

export interface BusBenchResult {
  rtu: RtuLineResult[];
  rtuSkipped?: string;
  kiosks: KioskResult;
  targets: Array<{ name: string; pass: boolean; detail: string }>;
}

export async function runBusBench(
  opts: { seconds: number; kiosks: number },
  log: (s: string) => void,
): Promise<BusBenchResult> {
  const rtu: RtuLineResult[] = [];
  const skip = rtuSkipReason();
  if (skip) log(`serial line benchmark skipped: ${skip}`);
  else {
    for (const baud of [9600, 115200]) {
      log(`serial: ${baud} baud, ${opts.seconds} s ...`);
      rtu.push(await runRtuLine(baud, opts.seconds));
    }
  }
  log(`tcp: ${opts.kiosks} kiosks polled once a second, ${opts.seconds} s ...`);
  const kiosks = await runKiosks(opts.kiosks, opts.seconds);

  const f = (n: number, d = 1) => n.toFixed(d);
  log("");
  log("Modbus RTU on a wire-time-paced pty (4 MFS-8 panels, 14 registers per poll, 8E1)");
  log("  baud    theoretical/s  achieved/s  ratio   timeouts  crc  line utilisation");
  for (const r of rtu) {
    log(
      `  ${String(r.baud).padEnd(7)} ${f(r.theoreticalPollsPerSec).padStart(13)} ${f(r.achievedPollsPerSec).padStart(11)} ${`${f(r.ratio * 100)}%`.padStart(6)} ${String(r.timeouts).padStart(10)} ${String(r.crcErrors).padStart(4)} ${`${f(r.utilisation * 100)}%`.padStart(17)}`,
    );
  }
  log("");
  log(`Modbus TCP: ${kiosks.kiosks} GK-3 kiosks, 1 poll/s each, ${f(kiosks.seconds)} s window`);
  log(
    `  online ${kiosks.online}, polls ok ${kiosks.pollsOk}, failed ${kiosks.pollsFailed}, achieved ${f(kiosks.achievedPollsPerSec)} polls/s`,
  );
  log(
    `  lateness ms: p50 ${f(kiosks.latenessMs.p50, 2)}  p99 ${f(kiosks.latenessMs.p99, 2)}  max ${f(kiosks.latenessMs.max, 2)}  (${kiosks.latenessMs.samples} polls)`,
  );
  log(`  gateway CPU ${f(kiosks.cpuPctOfOneCore)} % of one core, RSS ${f(kiosks.rssMb, 0)} MB`);

  const targets: BusBenchResult["targets"] = [];
  const r9600 = rtu.find((r) => r.baud === 9600);
  if (r9600) {
    targets.push({
      name: "RTU 9600 baud achieves >= 90 % of the line's maximum",
      pass: r9600.ratio >= 0.9,
      detail: `${f(r9600.ratio * 100)} %`,
    });
  }
  targets.push({
    name: `${kiosks.kiosks} TCP kiosks at 1 Hz: p99 poll lateness < 20 ms`,
    pass: kiosks.latenessMs.p99 < 20 && kiosks.pollsFailed === 0,
    detail: `p99 ${f(kiosks.latenessMs.p99, 2)} ms, ${kiosks.pollsFailed} failed`,
  });
  log("");
  for (const t of targets) log(`  ${t.pass ? "PASS" : "FAIL"}  ${t.name}: ${t.detail}`);
  return { rtu, ...(skip ? { rtuSkipped: skip } : {}), kiosks, targets };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({
    options: { seconds: { type: "string", default: "10" }, kiosks: { type: "string", default: "500" } },
  });
  const result = await runBusBench({ seconds: Number(values.seconds), kiosks: Number(values.kiosks) }, (s) =>
    process.stdout.write(`${s}\n`),
  );
  process.exit(result.targets.every((t) => t.pass) ? 0 : 1);
}
