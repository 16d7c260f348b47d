/**
 * Public surface of the gateway (the package's main export, "linli"): what
 * the CLI composes. The gateway imports core/, protocols/ and devices/, never
 * sim/ or cli/.
 */

export { DEFAULT_LOG2_N, hashPassword } from "./broker/credentials.js";
export { portProblems } from "./config/checks.js";
export { LAST_GOOD_FILE, type LastGood, loadLastGood, saveLastGood } from "./config/last-good.js";
export { ConfigError, loadConfigFile, loadConfigFileWithInput, validateConfig } from "./config/load.js";
export { type Config, type ConfigInput, configJsonSchema } from "./config/schema.js";
export {
  configWarnings,
  plainTextPasswordWarning,
  siteFileWarning,
  weakPasswordWarnings,
} from "./config/warnings.js";
export { fdLimitWarning } from "./fd-budget.js";
export { DEFAULT_DATA_DIR, Gateway } from "./gateway.js";
export { applyEdgeHeapSettings } from "./heap.js";
export { createLogger, type Logger } from "./log.js";
export { describeMove, type MovedWithAlerts } from "./reload.js";
export { defaultModbusLinks } from "./southbound/modbus.js";
export { SystemdNotifier } from "./systemd.js";
export { linliVersion } from "./version.js";
