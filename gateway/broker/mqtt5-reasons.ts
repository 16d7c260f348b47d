/**
 * MQTT 5 CONNACK reason codes (§3.2.2.2) for the 3.1.1 return codes the gateway gives, one table
 * for both listeners: aedes' (mqtt5.ts) and the device listener's (front/connection.ts); and the
 * one MQTT 5 bound both listeners share.
 */

/** 0x84: unsupported protocol version. */
export const UNSUPPORTED_PROTOCOL_VERSION = 0x84;

export function v5ConnackReason(returnCode: number): number {
  switch (returnCode) {
    case 0:
      return 0;
    case 1:
      return UNSUPPORTED_PROTOCOL_VERSION;
    case 2:
      return 0x85; // client identifier not valid
    case 3:
      return 0x88; // server unavailable
    case 4:
      return 0x86; // bad user name or password
    default:
      return 0x87; // not authorized
  }
}

/**
 * How many downlinks may wait for room under a device's Receive Maximum. A device's downlinks
 * are few (acknowledgements of its calls, commands); past this the oldest waiting one is dropped
 * and counted: a device that never acknowledges must not make the gateway hold its downlinks
 * without bound.
 */
export const MAX_WAITING_DOWNLINKS = 32;
