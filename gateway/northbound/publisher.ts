/**
 * The operations API on MQTT (docs/topics.md is the contract):
 *
 *   linli/<site>/alerts/<p1..p4>/<CODE>/<deviceId>   alert state, retained while open
 *   linli/<site>/telemetry/<model>/<deviceId>         normalised readings
 *   linli/<site>/devices/<deviceId>/status            online | lost, retained
 *   linli/<site>/devices/<deviceId>/service           out of service, retained while it lasts
 *   linli/<site>/gateway/status                       online | offline, retained
 *   linli/<site>/alerts/summary                       the set of retained alert states, retained
 *   devices/ec200/<deviceId>/down                     downlink to a pendant
 */

import type { Quality } from "../../core/index.js";
import type { Alert, Transition } from "../alerts/alert.js";
import type { AlertContent, EscalationInfo } from "../content/alert-content.js";
import type { DeviceEntry, LinkState } from "../registry.js";
import type { DownlinkHooks, DownlinkSend, PendingDownlinks } from "../southbound/pending-downlinks.js";
import { AlertSummary } from "./alert-summary.js";
import type { NorthboundSink, Route } from "./sink.js";

export class Publisher {
  readonly gatewayStatusTopic: string;
  published = 0;
  /** Answers to operators wait for this (the journal's group commit): an answer is a promise kept. */
  private durable: ((publish: () => void) => void) | null = null;
  private pending: PendingDownlinks | null = null;
  /** The people-facing fields of an alert (gateway/content), added at serialisation; none until set. */
  private content: ((alert: Alert, t: Transition, esc?: EscalationInfo) => AlertContent) | null = null;

  /** What a console must hold to be complete (alert-summary.ts): follows every alert state published. */
  readonly summary: AlertSummary;

  constructor(
    readonly site: string,
    private readonly sink: NorthboundSink,
    now: () => number = Date.now,
    summaryIntervalMs = 1000,
  ) {
    this.gatewayStatusTopic = `linli/${site}/gateway/status`;
    const summaryTopic = `linli/${site}/alerts/summary`;
    this.summary = new AlertSummary(
      (payload) => {
        this.published++;
        this.sink.publish(summaryTopic, payload, 1, true);
      },
      now,
      summaryIntervalMs,
    );
  }

  /** Alerts and escalations carry names, places, message and local times from now on (docs/topics.md 0.6.0). */
  describeWith(content: (alert: Alert, t: Transition, esc?: EscalationInfo) => AlertContent): void {
    this.content = content;
  }

  alert(alert: Alert, transition: Transition, escalation?: EscalationInfo): void {
    // Object.assign onto the fresh view, not a spread: a spread of ~50 properties built an object
    // that JSON.stringify took ~10x longer on (measured: 150-250 µs against 16 µs per alert).
    const payload = JSON.stringify(
      Object.assign(alert.view(), this.content?.(alert, transition, escalation), { transition }),
    );
    this.published++;
    if (alert.state !== "closed") {
      this.sink.publish(alert.topic, payload, 1, true);
      this.summary.set(alert.topic, alert.priority, alert.id, alert.rev);
      return;
    }
    // Closed: everyone subscribed sees the final state once, then the retained copy is removed
    // (an empty retained payload deletes it, MQTT 3.1.1 §3.3.1.3).
    this.sink.publish(alert.topic, payload, 1, false);
    this.sink.publish(alert.topic, "", 1, true);
    this.summary.delete(alert.topic);
  }

  /** Telemetry JSON is assembled from the device's precomputed prefix: one string build per reading. */
  telemetry(
    device: DeviceEntry,
    gatewayTime: number,
    deviceTime: number | null,
    quality: Quality,
    metricsJson: string,
  ): void {
    this.published++;
    this.sink.publish(
      device.telemetryTopic,
      `${device.telemetryPrefix}"gatewayTime":${gatewayTime},"deviceTime":${deviceTime},"quality":"${quality}","metrics":${metricsJson}}`,
      0,
      false,
    );
  }

  deviceStatus(device: DeviceEntry, state: LinkState): void {
    this.published++;
    this.sink.publish(device.statusTopic, state, 1, true);
  }

  /** A device removed by a reload: its retained status is deleted (empty retained payload, §3.3.1.3). */
  deviceRemoved(device: DeviceEntry): void {
    this.published++;
    this.sink.publish(device.statusTopic, "", 1, true);
    // Its out-of-service state went with it (AlertEngine.closeSubject).
    this.deviceService(device.id, null);
  }

  /** The same by id: a device a start no longer has (or has as another model), gateway/startup.ts. */
  deviceForgotten(deviceId: string): void {
    this.published++;
    this.sink.publish(`linli/${this.site}/devices/${deviceId}/status`, "", 1, true);
    this.deviceService(deviceId, null);
  }

  /**
   * `linli/<site>/devices/<deviceId>/service` (0.9.4): retained while an operator has the device
   * out of service, so a console knows it without an open alert; back in service deletes it.
   */
  deviceService(
    deviceId: string,
    outOfService: { by: string; account: string | null; since: number } | null,
  ): void {
    this.published++;
    const topic = `linli/${this.site}/devices/${deviceId}/service`;
    if (outOfService === null) this.sink.publish(topic, "", 1, true);
    else
      this.sink.publish(
        topic,
        JSON.stringify({
          device: deviceId,
          inService: false,
          by: outOfService.by,
          account: outOfService.account,
          since: outOfService.since,
        }),
        1,
        true,
      );
  }

  gatewayStatus(state: "online" | "offline"): void {
    this.published++;
    this.sink.publish(this.gatewayStatusTopic, state, 1, true);
  }

  /**
   * From now on, operator results (ops/result, cmd/.../result) are published
   * only once what the action changed is durable: `gate` runs its argument
   * after the journal's next commit.
   */
  answerAfter(gate: (publish: () => void) => void): void {
    this.durable = gate;
  }

  private answer(topic: string, payload: string, only?: Route): void {
    this.published++;
    if (this.durable === null) this.sink.publish(topic, payload, 1, false, false, only);
    else this.durable(() => this.sink.publish(topic, payload, 1, false, false, only));
  }

  /** Outcome of an operator command, on `linli/<site>/cmd/<deviceId>/<command>/result`. */
  commandResult(deviceId: string, command: string, result: object): void {
    this.answer(`linli/${this.site}/cmd/${deviceId}/${command}/result`, JSON.stringify(result));
  }

  /**
   * From now on, a downlink to a device that is not connected waits for its next login
   * (southbound/pending-downlinks.ts) instead of going to no one.
   */
  queueDownlinksWith(pending: PendingDownlinks): void {
    this.pending = pending;
  }

  /** A downlink to the device: sent now, queued for its next login, or false (no downlink topic). */
  downlink(device: DeviceEntry, message: object, hooks?: DownlinkHooks): DownlinkSend {
    if (this.pending !== null) return this.pending.send(device, message, hooks);
    if (device.downlinkTopic === null) return false;
    this.rawDownlink(device.downlinkTopic, JSON.stringify(message));
    return "sent";
  }

  /** Publishes a downlink as it is (QoS 1, not retained). */
  rawDownlink(topic: string, payload: string): void {
    this.published++;
    this.sink.publish(topic, payload, 1, false);
  }

  // --- alert events, escalations, flood, operator results (docs/topics.md) ---

  private eventsTopicCache: string | null = null;

  /**
   * One alert transition on `linli/<site>/alerts/events` (QoS 1, not retained): the audit trail.
   * A P1 alert's line is urgent: the topic is shared by all priorities, so its prefix cannot say so.
   */
  alertEvent(event: { priority: number }): void {
    this.published++;
    this.eventsTopicCache ??= `linli/${this.site}/alerts/events`;
    this.sink.publish(this.eventsTopicCache, JSON.stringify(event), 1, false, event.priority === 1);
  }

  /** `linli/<site>/escalations/p<n>/<CODE>/<deviceId>`, QoS 1, not retained: the alert plus its escalation. */
  escalation(alert: Alert, level: number, unacknowledgedForMs: number): void {
    this.published++;
    this.sink.publish(
      `linli/${this.site}/escalations/p${alert.priority}/${alert.code}/${alert.subject.id}`,
      JSON.stringify(
        Object.assign(alert.view(), this.content?.(alert, "escalated", { level, unacknowledgedForMs }), {
          escalation: { level, unacknowledgedForMs },
        }),
      ),
      1,
      false,
    );
  }

  /** `linli/<site>/alerts/flood`, retained, so a console that connects mid-flood opens in its flood view. */
  flood(status: object): void {
    this.published++;
    this.sink.publish(`linli/${this.site}/alerts/flood`, JSON.stringify(status), 1, true);
  }

  /**
   * What became of an operator's request: `linli/<site>/ops/result/<operator>`, QoS 1, not retained.
   * `only`: to that side alone (a `list` page goes back where its request came from), else both.
   */
  opsResult(operator: string, result: object, only?: Route): void {
    this.answer(`linli/${this.site}/ops/result/${operator}`, JSON.stringify(result), only);
  }

  /** A household removed by a reload: its retained monitoring status is deleted. */
  householdRemoved(householdId: string): void {
    this.published++;
    this.sink.publish(`linli/${this.site}/households/${householdId}/monitoring`, "", 1, true);
  }

  /** Welfare monitoring of a household (away mode): `linli/<site>/households/<id>/monitoring`, retained. */
  householdMonitoring(householdId: string, status: object): void {
    this.published++;
    const topic = `linli/${this.site}/households/${householdId}/monitoring`;
    this.sink.publish(topic, JSON.stringify(status), 1, true);
  }
}
