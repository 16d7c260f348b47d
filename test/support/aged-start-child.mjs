// A real gateway process on an aged data directory, for test/aged-start.e2e.test.ts. Built code
// (npm run build). argv: data dir, devices (bench/startup-data.ts's site), the bound of what waits
// for the broker (GatewayOptions.untilListeningMax), ms the broker's start takes longer (a slow
// edge box with many sessions: past the timer wheel's next tick, as an aged 10,000-device start is),
// optionally the persistent sessions' queueLimit.
// stdout: the gateway's JSON log, then "port P". stdin "stop": stops the gateway and exits.
import { createInterface } from "node:readline";
import { startupConfig } from "../../dist/bench/startup-data.js";
import { EmbeddedBroker } from "../../dist/gateway/broker/embedded.js";
import { Gateway } from "../../dist/gateway/gateway.js";

const [dir, devices, max, delayMs, queueLimit] = process.argv.slice(2);
const brokerStart = EmbeddedBroker.start.bind(EmbeddedBroker);
EmbeddedBroker.start = async (opts) => {
  await new Promise((r) => setTimeout(r, Number(delayMs)));
  return brokerStart(opts);
};
const gw = await Gateway.start({
  config: startupConfig(Number(devices), { logLevel: "info", metrics: false }),
  dataDir: dir,
  untilListeningMax: Number(max),
  ...(queueLimit === undefined ? {} : { sessions: { queueLimit: Number(queueLimit) } }),
  mallocTrim: null,
});
process.stdout.write(`port ${gw.broker.addresses()[0].port}\n`);
createInterface({ input: process.stdin }).on("line", async (line) => {
  if (line.trim() !== "stop") return;
  await gw.stop();
  process.exit(0);
});
