// The pty pair helper lives with the simulator (its CLI uses it too).
export { openPtyPair, type PtyPair, socatMissingReason } from "../../sim/modbus/pty.js";
