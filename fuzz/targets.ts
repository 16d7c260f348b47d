/** Every decoder the fuzzer drives (docs/security.md, fuzzing), in report order. */
import { configTargets } from "./config.js";
import { modbusTargets } from "./modbus.js";
import { mqttTargets } from "./mqtt.js";
import { registerTargets } from "./registers.js";
import type { FuzzTarget } from "./target.js";

// biome-ignore lint/suspicious/noExplicitAny: targets of every input type, run through one property.
export const targets: readonly FuzzTarget<any>[] = [
  ...mqttTargets,
  ...modbusTargets,
  ...registerTargets,
  ...configTargets,
];
