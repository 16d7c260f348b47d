// Public surface of the Modbus master layers (see README.md for why they are hand-written).
export {
  checkLineBudget,
  DEFAULT_TURNAROUND_MS,
  type LineBudget,
  LineBudgetError,
  lineBudget,
  lineCapacityReadsPerSec,
  type PlannedPoll,
  readTransactionMs,
} from "./budget.js";
export {
  type BackoffOptions,
  type BusLinkEvent,
  type BusMode,
  type BusOptions,
  type BusStats,
  type LinkPhase,
  ModbusBus,
  type ModbusFailure,
  type ModbusResult,
  type PreparedRequest,
  type Priority,
  type RequestOptions,
} from "./bus.js";
export { crc16 } from "./crc.js";
export { encodeTcpRequest, MbapFramer } from "./mbap.js";
export {
  EXCEPTION_NAMES,
  exceptionName,
  MAX_READ_REGISTERS,
  type ModbusRequest,
  ModbusRequestError,
  validateRequest,
} from "./pdu.js";
export {
  coalesceRanges,
  type LinePlanOptions,
  ModbusPoller,
  type PollBlock,
  type PollDevice,
  type PollerOptions,
  type PollerStats,
  type PollResult,
  type RegisterRange,
} from "./poller.js";
export { ModbusReadError, type ModbusReadOptions, modbusRead } from "./read.js";
export { encodeRtuRequest, RtuReplyFramer, silentIntervalMs } from "./rtu.js";
