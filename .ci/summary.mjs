// Prints one "N passed, N failed, N skipped" line per vitest JSON report, for CI's log readers.
import { existsSync, readFileSync } from "node:fs";

let failedAny = false;
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) {
    console.log(`${file}: no report`);
    failedAny = true;
    continue;
  }
  const r = JSON.parse(readFileSync(file, "utf8"));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  const label = file.replace(/^.*\/(\w+)\.json$/, "$1");
  console.log(`${label}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  if (r.numFailedTests > 0 || r.numTotalTests === 0) failedAny = true;
}
process.exit(failedAny ? 1 : 0);
