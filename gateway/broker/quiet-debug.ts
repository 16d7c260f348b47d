/**
 * mqtt-packet's parser and writer call their `debug` logger 10-20 times per packet, and a disabled
 * `debug` instance still builds its rest-argument array on every call before it returns: 13 % of
 * everything the gateway allocated at 2,000 msg/s (sampling heap profile), so 13 % of its
 * scavenges, each one a pause a P1 alert may wait for (docs/performance.md). Here the `debug`
 * package mqtt-packet loads hands out one function that does nothing for an `mqtt-packet:*`
 * namespace that is disabled when the logger is made (DEBUG unset or not naming it), and the
 * usual logger otherwise: `DEBUG=mqtt-packet:*` still prints. mqtt-packet makes its loggers when it
 * is first loaded, so this module has to be evaluated before it: every module that loads aedes or
 * mqtt-packet at run time imports this one first. Other packages' loggers are left as they are.
 */
import { createRequire } from "node:module";
import { dirname } from "node:path";

type Debug = ((...args: unknown[]) => void) & { enabled: boolean; namespace: string };
type CreateDebug = (namespace: string) => Debug;

const QUIET_PREFIX = "mqtt-packet:";
const quieted = new Set<string>();

const require = createRequire(import.meta.url);
// The `debug` that mqtt-packet resolves, wherever npm placed it.
const debugPath = require.resolve("debug", { paths: [dirname(require.resolve("mqtt-packet"))] });
require(debugPath);
const debugModule = require.cache[debugPath];
if (debugModule !== undefined) {
  const real = debugModule.exports as CreateDebug;
  const quiet = new Proxy(real, {
    apply(target, thisArg, args: [string]): Debug {
      const logger = Reflect.apply(target, thisArg, args) as Debug;
      if (logger.enabled || !String(args[0]).startsWith(QUIET_PREFIX)) return logger;
      quieted.add(args[0]);
      return Object.assign(function quietDebug(): void {}, { enabled: false, namespace: args[0] });
    },
  });
  debugModule.exports = quiet;
}

/** The namespaces given the no-op logger so far (tests: proves this ran before mqtt-packet loaded). */
export function quietedNamespaces(): ReadonlySet<string> {
  return quieted;
}
