/**
 * Where northbound messages go: the embedded broker, or (later) an upstream
 * one. The publisher builds topics and payloads; a sink only delivers them.
 */
export interface NorthboundSink {
  publish(topic: string, payload: string, qos: 0 | 1, retain: boolean): void;
}
