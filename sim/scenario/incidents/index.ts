/**
 * Every incident kind of the scenario format, by transport. Adding a kind to the schema without an
 * entry here (or giving one kind two entries) does not compile.
 */
import { MODBUS_INCIDENTS } from "./modbus.js";
import { MQTT_INCIDENTS } from "./mqtt.js";
import type { IncidentKind, IncidentSpec } from "./spec.js";

/** Does not compile if a kind has an entry in both tables (the spread below would drop one silently). */
type NoKindTwice<Both extends never> = Both;
export type KindsInBothTables = NoKindTwice<keyof typeof MQTT_INCIDENTS & keyof typeof MODBUS_INCIDENTS>;

const INCIDENTS: { readonly [K in IncidentKind]: IncidentSpec<K> } = {
  ...MQTT_INCIDENTS,
  ...MODBUS_INCIDENTS,
};

/** The entry of one kind (typed by that kind, so its `run` takes the phase as it is). */
export function incidentSpec<K extends IncidentKind>(kind: K): IncidentSpec<K> {
  return INCIDENTS[kind];
}
