// A broker with operators' sessions on a journal, for test/sessions-crash.e2e.test.ts (which SIGKILLs it).
// Built code (npm run build). argv: journal dir. stdin: "publish N" -> publishes N QoS 1 alerts once
// ops-console-k is gone, then prints "queued N" when they are written to the journal. stdout first line: "port P".
import { createInterface } from "node:readline";
import { AccessPolicy } from "../../dist/gateway/broker/access.js";
import { EmbeddedBroker } from "../../dist/gateway/broker/embedded.js";
import { validateConfig } from "../../dist/gateway/config/load.js";
import { Journal } from "../../dist/gateway/journal/journal.js";
import { createLogger, RateLimitedLog } from "../../dist/gateway/log.js";
import { Registry } from "../../dist/gateway/registry.js";
import { Counters } from "../../dist/gateway/stats.js";

const config = validateConfig({
  site: { id: "s1" },
  operators: [{ name: "ops", password: "secret" }],
  devices: [],
});
const journal = Journal.open({ dir: process.argv[2] });
const log = createLogger({ level: "silent" });
const broker = await EmbeddedBroker.start({
  listeners: [{ host: "127.0.0.1", port: 0 }],
  maxConnections: 10,
  policy: new AccessPolicy("s1", new Registry(config, { onLost: () => {}, onWelfareDue: () => {} })),
  handlers: { uplink: (_d, _p, _c, done) => done(null), operator: () => {} },
  counters: new Counters(),
  log,
  rateLog: new RateLimitedLog(log),
  sessions: { store: journal },
});
process.stdout.write(`port ${broker.addresses()[0].port}\n`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
for await (const line of createInterface({ input: process.stdin })) {
  const n = Number(line.split(" ")[1]);
  while (broker.aedes.clients["ops-console-k"] !== undefined) await sleep(10);
  for (let i = 0; i < n; i++) broker.publish(`linli/s1/alerts/p1/FALL/dev-${i}`, `{"n":${i}}`, 1, true);
  while ([...journal.keys("mqtt/q/")].length < n) await sleep(10);
  // Put is in memory; a SIGKILL keeps what was written (page cache). On a loaded machine the
  // pool's write could come after the test's kill: "queued" said too early lost all 30.
  await new Promise((r) => journal.afterWrite(r));
  process.stdout.write(`queued ${n}\n`);
}
