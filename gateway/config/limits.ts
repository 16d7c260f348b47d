/**
 * The `limits` section of the site config: what a connection may cost the
 * gateway before and after it logs in (docs/security.md "Limits").
 */
import { z } from "zod";
import { parseDuration } from "../../core/index.js";

const DURATION_HELP =
  'Duration: seconds as a number, or a string with a unit: "250ms", "300s", "10m", "24h", "2d"';

/** A duration that must be positive (a zero timeout or window would disable the limit by accident). */
const positiveDuration = (fallback: string) =>
  z
    .union([z.string(), z.number()])
    .default(fallback)
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === null || ms <= 0) {
        ctx.addIssue({
          code: "custom",
          message: `expected a positive duration such as "5s" or "10m", got ${JSON.stringify(v)}`,
        });
        return z.NEVER;
      }
      return ms;
    })
    .meta({ description: DURATION_HELP });

const login = z.strictObject({
  attemptsPerSecond: z.number().positive().default(20).meta({
    description:
      "New connections accepted per source address per second (token bucket); beyond it they are closed at once",
  }),
  attemptBurst: z.number().int().min(1).default(200).meta({
    description: "Connections a source address may open at once before attemptsPerSecond applies",
  }),
  maxFailures: z.number().int().min(1).default(10).meta({
    description: "Failed logins within failureWindow that ban the source address (and the username)",
  }),
  failureWindow: positiveDuration("60s"),
  banDuration: positiveDuration("5m").meta({
    description: "How long a banned address or username is refused without reading its login",
  }),
  maxTracked: z.number().int().min(16).default(10_000).meta({
    description:
      "Source addresses remembered (failures, rates) and bans kept; beyond it the least recently seen is forgotten",
  }),
});

const deviceRateOverride = z.strictObject({
  perSecond: z.number().positive(),
  burst: z.number().int().min(1),
});

const deviceRate = z.strictObject({
  enabled: z.boolean().default(true).meta({
    description:
      "Drop (and count) a device's messages beyond its model's rate; P1-bearing messages are never dropped",
  }),
  models: z
    .record(z.string(), deviceRateOverride)
    .default({})
    .meta({ description: "Per model (ec200, ds10): { perSecond, burst } instead of the datasheet default" }),
  misbehavingAfter: positiveDuration("60s").meta({
    description:
      "A device whose messages are still being dropped (over its rate) or left with it (over its share of the P1 lane or of the alert lane) this long after the first: DEVICE_MISBEHAVING",
  }),
  clearAfter: positiveDuration("5m").meta({
    description:
      "DEVICE_MISBEHAVING clears when nothing of the device was dropped or left with it for this long (each cause on its own)",
  }),
});

export const limitsSchema = z.strictObject({
  connectTimeout: positiveDuration("5s").meta({
    description: "A connection that has not logged in by then is closed",
  }),
  maxConnectSize: z.number().int().min(128).max(65_536).default(1024).meta({
    description:
      "Largest packet (remaining length, bytes) read before login: the CONNECT; a larger one closes the socket before its body is read",
  }),
  operatorMaxPacket: z.number().int().min(1024).max(268_435_455).default(65_536).meta({
    description:
      "Largest packet an operator may send (bytes); devices: their model's payload limit plus topic",
  }),
  maxSubscriptions: z.number().int().min(1).default(100).meta({
    description: "Subscriptions per client; beyond it a SUBSCRIBE is refused (0x80)",
  }),
  maxInflight: z.number().int().min(1).max(65_535).default(4096).meta({
    description:
      "Unacknowledged QoS 1/2 messages from one client; beyond it the connection is closed (the client re-sends)",
  }),
  login: login.default(() => login.parse({})),
  deviceRate: deviceRate.default(() => deviceRate.parse({})),
});

export type LimitsConfig = z.output<typeof limitsSchema>;

export const DEFAULT_LIMITS: LimitsConfig = limitsSchema.parse({});
