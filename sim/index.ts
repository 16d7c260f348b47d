/**
 * Public surface of the simulator (the demo community and the fire station's
 * Modbus units). The simulator imports only core/ and protocols/: it shares no
 * decoding table with the gateway, so a test against it checks the datasheet.
 */

export { runSim, type SimOptions } from "./cli.js";
export {
  communityDevices,
  createCommunity,
  DEFAULT_EVENT_RATE,
  DEFAULT_FIRST_INCIDENTS_WITHIN_MS,
  DEFAULT_RATES,
  demoCredentials,
} from "./community/community.js";
export {
  DEFAULT_STATION_EVENT_EVERY_MS,
  STATION_UNITS,
  type StationEvent,
  type Stations,
  startStations,
  TANK_UNIT,
} from "./community/stations.js";
export { Gd2 } from "./mqtt/gd2.js";
