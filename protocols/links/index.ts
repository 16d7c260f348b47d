export type { Link, LinkCloseInfo, LinkCloseReason, LinkEventMap, LinkState } from "./link.js";
export { LinkEvents, LinkNotOpenError } from "./link.js";
export { MemoryLine, MemoryLink } from "./memory.js";
export {
  bitsPerChar,
  type Parity,
  SerialLink,
  type SerialLinkOptions,
  type SerialSettings,
} from "./serial.js";
export { TcpLink, type TcpLinkOptions } from "./tcp.js";
