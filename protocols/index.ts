/**
 * Public surface of the protocol layer (links, Modbus master, payload codec):
 * what devices/, gateway/ and sim/ use. It imports only core/.
 */
export { decodePayload } from "./codec/payload.js";
export { fieldAt } from "./codec/top-level.js";
export {
  bitsPerChar,
  type Link,
  MemoryLine,
  type Parity,
  SerialLink,
  type SerialSettings,
  TcpLink,
} from "./links/index.js";
export {
  type BusLinkEvent,
  type BusStats,
  checkLineBudget,
  coalesceRanges,
  LineBudgetError,
  type LinkPhase,
  MAX_READ_REGISTERS,
  ModbusBus,
  type ModbusFailure,
  ModbusPoller,
  ModbusReadError,
  type ModbusRequest,
  modbusRead,
  type PollerStats,
  type PollResult,
} from "./modbus/index.js";
