/**
 * The pipeline's consume step: what happens to every accepted sample, in lane priority order, once
 * it leaves the ring: supervision (seen, activity), the device's rules through the alert engine,
 * the journaled seq of an alert-bearing uplink, a command's reply, the latency metric, and the
 * telemetry published northbound. On the path of every message (benchmarked P1 latency):
 * `consume` is one function, made once, and every field is set in the constructor (one shape).
 */

import { type Clock, LANE_TELEMETRY, type Quality } from "../core/index.js";
import type { AlertEngine } from "./alerts/engine.js";
import type { CommandFailureText } from "./content/command-text.js";
import type { RateLimitedLog } from "./log.js";
import type { GatewayMetrics } from "./metrics/metrics.js";
import type { Publisher } from "./northbound/publisher.js";
import type { PipelineEntry } from "./pipeline/lanes.js";
import type { DeviceEntry } from "./registry.js";
import type { DeviceRuleContext } from "./rule-context.js";
import { publishReply } from "./southbound/mqtt-commands.js";
import type { StateRecorder } from "./state/recorder.js";
import type { Counters } from "./stats.js";
import type { Supervisor } from "./supervision.js";

export interface SampleConsumerParts {
  clock: Clock;
  counters: Counters;
  supervisor: Supervisor;
  engine: AlertEngine;
  /** What rules see for each sample: the device's alerts and its automatic commands. */
  ruleContext: DeviceRuleContext<DeviceEntry>;
  rateLog: RateLimitedLog;
  publisher: Publisher;
  metrics: GatewayMetrics;
  /** Null when there is no journal. */
  recorder: StateRecorder | null;
  clockSkewToleranceMs: number;
  /** A device's refusal of a command (its `reply`), in the site's language; null: no `message`. */
  failureText?: CommandFailureText | null;
}

export class SampleConsumer {
  private readonly clock: Clock;
  private readonly failureText: CommandFailureText | null;
  private readonly counters: Counters;
  private readonly supervisor: Supervisor;
  private readonly engine: AlertEngine;
  private readonly ruleContext: DeviceRuleContext<DeviceEntry>;
  private readonly rateLog: RateLimitedLog;
  private readonly publisher: Publisher;
  private readonly metrics: GatewayMetrics;
  private readonly recorder: StateRecorder | null;
  private readonly clockSkewToleranceMs: number;

  constructor(parts: SampleConsumerParts) {
    this.clock = parts.clock;
    this.counters = parts.counters;
    this.supervisor = parts.supervisor;
    this.engine = parts.engine;
    this.ruleContext = parts.ruleContext;
    this.rateLog = parts.rateLog;
    this.publisher = parts.publisher;
    this.failureText = parts.failureText ?? null;
    this.metrics = parts.metrics;
    this.recorder = parts.recorder;
    this.clockSkewToleranceMs = parts.clockSkewToleranceMs;
  }

  /** Pipeline consumer: every accepted sample, in lane priority order. */
  readonly consume = (entry: PipelineEntry): void => {
    const device = entry.device as DeviceEntry;
    // Queued before a reload removed the device: its alerts are closed and must stay so.
    if (device.removed) {
      this.counters.reject(device.model, "device-removed");
      return;
    }
    const sample = entry.sample;
    const profile = device.profile;
    this.supervisor.seen(device, entry.receivedAt);
    const recorder = this.recorder;
    recorder?.seen(device);
    if (device.householdEntry && profile.isActivity(sample)) {
      this.supervisor.activity(device.householdEntry, entry.receivedAt);
      recorder?.activity(device.householdEntry);
    }
    const writesBeforeRules = recorder?.writes ?? 0;
    // An alert-bearing uplink's seq is journaled after what it changed, and its PUBACK waits for
    // both: a torn tail (power cut mid-write) can keep the change without the seq (a re-send counts
    // as a repeat) but never the seq without the change (a re-send would be dropped as a duplicate
    // and the press lost). The alert state its rules put last and the seq go in one record (the
    // recorder holds that state until the rules are done; its publish waits for it).
    const journalSeq = recorder !== null && entry.lane !== LANE_TELEMETRY && profile.transport === "mqtt";
    if (journalSeq) recorder.message(device, profile.seq(sample));
    // Lanes reorder: an entry older than one whose rules already ran must not overrule it. Telemetry
    // never does; nor does any older poll or snapshot message, superseded by the newer whole state
    // (a P2 status poll drained after the next poll's fire would clear FIRE_ALARM). Older means
    // received earlier: a parked or held sample enters its lane (and gets its ingestSeq) after
    // newer ones of its device, so ingestSeq only breaks a tie of receipt times. An older entry
    // whose rules still run (a partial message: an EC-200 event) is told it is older (`ctx.stale`),
    // so that the lasting state it carries does not overrule the newer one's.
    const newer =
      entry.receivedMono > device.lastRulesMono ||
      (entry.receivedMono === device.lastRulesMono && entry.ingestSeq > device.lastRulesSeq);
    const superseded =
      !newer &&
      (entry.lane === LANE_TELEMETRY || profile.transport === "modbus" || profile.snapshot === true);
    if (superseded) this.metrics.recordSuperseded(entry.lane);
    else {
      try {
        const alerts = this.engine.contextFor(device, profile.suppressed(sample));
        const ctx = this.ruleContext.for(device, alerts, !newer, entry.receivedMono);
        profile.rules(sample, device.ruleState, device.settings, ctx);
        // What the rules keep that decides alerts (a GD-2's sensor fault), journaled when it changed.
        recorder?.rules(device);
      } catch (err) {
        recorder?.endMessage();
        this.rateLog.warn(device.id, "rules-failed", { deviceId: device.id, err }, "device rules failed");
        throw err;
      }
      if (newer) {
        device.lastRulesMono = entry.receivedMono;
        device.lastRulesSeq = entry.ingestSeq;
      }
    }
    if (journalSeq) recorder.messageDone(recorder.writes !== writesBeforeRules);
    // The device's answer to a command (GD-2 `reply`): a second result for whoever sent it. Only
    // for one of its model's commands: the name becomes a topic level, and a device's free text
    // there put levels, wildcards (`+`, `#`: a protocol error at every subscriber and upstream)
    // or an answer to a command nobody sent into linli/<site>/cmd/.
    if (profile.transport === "mqtt" && profile.reply !== undefined) {
      const reply = profile.reply(sample);
      if (reply !== null && Object.hasOwn(profile.commands, reply.command))
        publishReply(this.publisher, device, reply, entry.receivedAt, this.failureText);
      else if (reply !== null) {
        this.counters.reject(device.model, "reply-unknown-command");
        this.rateLog.warn(
          device.id,
          "reply-unknown-command",
          { deviceId: device.id, command: reply.command.slice(0, 64) },
          "device reply to none of its model's commands dropped",
        );
      }
    }
    this.metrics.recordLatency(entry.lane, this.clock.monotonic() - entry.receivedMono);
    // null: a device without a clock (polled); 0: a device that lost its clock (battery change).
    const ts = profile.deviceTime(sample);
    // What is wrong with the values first: a consumer must not chart a dropped or implausible reading.
    const quality: Quality =
      profile.quality?.(sample, device.ruleState) ??
      (ts !== null && (ts === 0 || Math.abs(ts - entry.receivedAt) > this.clockSkewToleranceMs)
        ? "device-clock-invalid"
        : "good");
    this.publisher.telemetry(
      device,
      entry.receivedAt,
      ts === 0 ? null : ts,
      quality,
      JSON.stringify(profile.metrics(sample, device.ruleState)),
    );
  };
}
