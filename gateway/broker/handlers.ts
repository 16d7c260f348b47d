/** What the broker hands to the gateway: devices' uplinks and operators' actions. */
import type { Completion } from "../pipeline/lanes.js";
import type { DeviceEntry } from "../registry.js";
import type { OperatorAction } from "./access.js";

export interface BrokerHandlers {
  uplink(device: DeviceEntry, payload: Buffer, contentType: string | undefined, done: Completion): void;
  /**
   * How many readings a listener that queues its own (the device listener's shared ring, off the
   * JS heap) should hand over now, at most `max`; the rest wait there. Absent: all of them.
   */
  readingRoom?(max: number): number;
  /**
   * Whether operators' actions are taken now; false while the gateway stops (its engine and journal
   * are going): the request is then left unacknowledged (the connection is closed without a
   * PUBACK), so the operator's client sends it again to the restarted gateway. Absent: always.
   */
  takingActions?(): boolean;
  /**
   * Calls `done` once the records of the operator actions handled so far are committed (the
   * journal's promise, `storage.sync`); the request's PUBACK waits for it, so a crash before its
   * records are written leaves it unacknowledged and the client sends it again. Absent: at once.
   */
  afterOperatorAction?(done: () => void): void;
  /**
   * An operator's request its role does not allow (access.ts `forbidden`): to be answered
   * `forbidden` and nothing else. Absent: handed to `operator`, which checks the role again.
   */
  forbidden?(
    operator: string,
    action: OperatorAction,
    target: string,
    command: string | null,
    payload: Buffer,
  ): void;
  /** An operator's action (ack, shelve, command, ...), already authorised by topic. */
  operator(
    operator: string,
    action: OperatorAction,
    target: string,
    command: string | null,
    payload: Buffer,
  ): void;
}
