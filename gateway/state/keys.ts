/**
 * The journal's key space (docs/durability.md, "What is stored"). One key per
 * thing that outlives a restart; a change overwrites the key, an end deletes it.
 */
export const KEY = {
  /** alert/<alertId>: an open alert, every field (AlertRecord). */
  alert: (id: string) => `alert/${id}`,
  /** shelve/<subjectId>/<CODE>: shelving of a (device, code), which outlives one alert id. */
  shelve: (subjectId: string, code: string) => `shelve/${subjectId}/${code}`,
  /** service/<subjectId>: out of service, by whom and since when. */
  service: (subjectId: string) => `service/${subjectId}`,
  /** away/<householdId>: away mode. */
  away: (householdId: string) => `away/${householdId}`,
  /** dev/<deviceId>: last seen, link state, seq numbers of recent alert-bearing messages. */
  device: (deviceId: string) => `dev/${deviceId}`,
  /**
   * rule/<deviceId>: what the model's rules keep that decides alerts (`profile.durable`: a GD-2's
   * sensor fault, its detector's alarm level), `[version, model, ...values]`.
   */
  rule: (deviceId: string) => `rule/${deviceId}`,
  /**
   * hold/<subjectId>/<CODE>: an on-delay under way (`{ since }`, gateway time; HoldRecord), so that
   * a restart does not start it again from zero.
   */
  hold: (subjectId: string, code: string) => `hold/${subjectId}/${code}`,
  /**
   * hhkept/<householdId>: the names (name, address, room, residentName, contactPhone) last read of
   * a household that open alerts of devices moved elsewhere keep (gateway/kept-households.ts).
   */
  keptHousehold: (householdId: string) => `hhkept/${householdId}`,
  /**
   * devkept/<alertId>: the name and location of an open alert's device as last read in the
   * household the alert keeps, once a reload moved the device elsewhere (gateway/kept-devices.ts).
   */
  keptDevice: (alertId: string) => `devkept/${alertId}`,
  /**
   * down/<deviceId>: downlinks waiting for the device's next login or its PUBACK
   * (southbound/pending-downlinks.ts), `{ topic, entries }`, at most 8 entries.
   */
  downlinks: (deviceId: string) => `down/${deviceId}`,
  /** hh/<householdId>: last resident activity. */
  household: (householdId: string) => `hh/${householdId}`,
  /** flood: the flood detector with its 10-minute window. */
  flood: "flood",
  /** running: when the gateway was last known to run (RunningRecord), so a start knows how long it was down. */
  running: "running",
} as const;

export const PREFIX = {
  alert: "alert/",
  shelve: "shelve/",
  service: "service/",
  away: "away/",
  device: "dev/",
  rule: "rule/",
  hold: "hold/",
  household: "hh/",
  keptHousehold: "hhkept/",
  keptDevice: "devkept/",
  downlinks: "down/",
} as const;
