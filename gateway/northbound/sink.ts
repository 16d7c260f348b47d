/**
 * Where northbound messages go: the embedded broker, or (later) an upstream
 * one. The publisher builds topics and payloads; a sink only delivers them.
 */
export interface NorthboundSink {
  /**
   * `urgent`: a P1 message on a topic that is not P1 by its prefix (a P1 alert's line on
   * `alerts/events`); the upstream bridge then never drops it and sends it first.
   * `only`: to one side alone (an answer to a request goes back where it came from); both when
   * undefined.
   */
  publish(topic: string, payload: string, qos: 0 | 1, retain: boolean, urgent?: boolean, only?: Route): void;
}

/** The embedded broker (local operators and consoles) or the upstream broker. */
export type Route = "local" | "upstream";
