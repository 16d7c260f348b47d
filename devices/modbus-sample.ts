/**
 * A poll's register blocks -> the profile's typed sample, or a counted
 * refusal: the one path from a Modbus reply to a sample, used by the
 * southbound (gateway/southbound/modbus.ts) and by the fuzzer (fuzz/registers.ts).
 */
import { decodePointsFromBlocks, PointSpecError, type RegisterBlock } from "./modbus-decode.js";
import { type ModbusDeviceProfile, type Rejection, reject } from "./profile.js";

export function decodePollSample<S>(
  profile: ModbusDeviceProfile<S>,
  blocks: readonly RegisterBlock[],
): S | Rejection {
  let values: ReturnType<typeof decodePointsFromBlocks>;
  try {
    values = decodePointsFromBlocks(profile.points, blocks);
  } catch (err) {
    // A reply that lacks a register of the map (a block shorter than asked for).
    if (err instanceof PointSpecError) return reject("bad-field", err.message);
    throw err;
  }
  return profile.decode(values);
}
