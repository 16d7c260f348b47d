/**
 * Public surface of the device layer: the profiles by model name and what
 * the gateway needs to run them. It imports only protocols/ and core/.
 */
export { compileProfile } from "./declared/compile.js";
export { type DeclaredProfileDoc, declaredProfileSchema } from "./declared/schema.js";
export { parseOpeningHours } from "./modbus-common.js";
export { formatInterpretations, pointRanges } from "./modbus-decode.js";
export { decodePollSample } from "./modbus-sample.js";
export { profiles } from "./models.js";
export {
  type AlertOptions,
  type AnyProfile,
  type ConditionOptions,
  type DeviceSettings,
  isRejection,
  type ModbusDeviceProfile,
  type RuleContext,
} from "./profile.js";
