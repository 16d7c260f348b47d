/**
 * Public surface of the device layer: the registered profiles, what is
 * derived from them (config entries, documentation tables), and what the
 * gateway needs to run them. It imports only protocols/ and core/.
 */

export { commandOf, type ModbusWrite, modbusWrite, unknownCommand } from "./commands.js";
export {
  type BindingConfig,
  type DeviceSchema,
  type DeviceSchemas,
  deviceSchema,
  deviceSchemas,
} from "./config.js";
export { compileProfile } from "./declared/compile.js";
export { type DeclaredProfileDoc, declaredAlarmText, declaredProfileSchema } from "./declared/schema.js";
export { regenerate as regenerateTopicsDoc } from "./docs.js";
export { formatInterpretations, pointRanges } from "./modbus-decode.js";
export { decodePollSample } from "./modbus-sample.js";
export { MODELS, PROFILES, profileFor } from "./models.js";
export {
  type AlertContext,
  type AlertDetail,
  type AlertOptions,
  type AlertSpec,
  type AlertText,
  type AnyProfile,
  type Binding,
  type CommandReply,
  type ConditionOptions,
  DEFAULT_LOST_RULE,
  type DeviceSettings,
  type DurableRuleState,
  type DurableValue,
  INACTIVE,
  isRejection,
  type ModbusDeviceProfile,
  type MqttDeviceProfile,
  mqttLostRule,
  num,
  profileProblem,
  type RuleContext,
} from "./profile.js";
export { type ThresholdSpec, ThresholdState } from "./threshold.js";
