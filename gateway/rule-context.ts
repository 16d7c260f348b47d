/**
 * What a profile's rules see for one sample: the alert engine's context for
 * the device, plus the gateway's automatic actions on it (a command the
 * rules send themselves, such as the GD-2's shut-off on a gas leak). One
 * object, re-pointed for every sample: the hot path allocates nothing.
 */
import type { AlertCode } from "../core/index.js";
import type { AlertContext, AlertOptions, ConditionOptions, RuleContext } from "../devices/index.js";

/** Sends a command of the device's model on the rules' behalf; false when it could not be sent. */
export type AutomaticCommand<D> = (device: D, name: string) => boolean;
/** Whether such a command still waits for the device (southbound/pending-downlinks.ts). */
export type AutomaticCommandWaiting<D> = (device: D, name: string) => boolean;

export class DeviceRuleContext<D> implements RuleContext<AlertCode> {
  private inner: AlertContext<AlertCode> | null = null;
  private device: D | null = null;
  private older = false;
  private readMono = 0;

  constructor(
    private readonly send: AutomaticCommand<D>,
    private readonly waiting: AutomaticCommandWaiting<D> = () => false,
  ) {}

  /**
   * Points the context at one device's alerts for one sample; `stale`: a newer one's rules already
   * ran; `readAt`: when the sample was read, monotonic (tests on a fake clock may leave it: the
   * engine's time, which moves with it).
   */
  for(device: D, inner: AlertContext<AlertCode>, stale = false, readAt = inner.now): this {
    this.device = device;
    this.inner = inner;
    this.older = stale;
    this.readMono = readAt;
    return this;
  }

  private get alerts(): AlertContext<AlertCode> {
    if (this.inner === null) throw new Error("rule context used outside a sample");
    return this.inner;
  }

  get stale(): boolean {
    return this.older;
  }
  get readAt(): number {
    return this.readMono;
  }
  get now(): number {
    return this.alerts.now;
  }
  raise(code: AlertCode, opts: AlertOptions & { windowMs: number }): void {
    this.alerts.raise(code, opts);
  }
  condition(code: AlertCode, active: boolean, opts: ConditionOptions): void {
    this.alerts.condition(code, active, opts);
  }
  markCancelled(codes: readonly AlertCode[]): number {
    return this.alerts.markCancelled(codes);
  }
  confirmDelivered(alertId: string): void {
    this.alerts.confirmDelivered(alertId);
  }
  command(name: string): boolean {
    if (this.device === null) throw new Error("rule context used outside a sample");
    return this.send(this.device, name);
  }
  commandWaiting(name: string): boolean {
    if (this.device === null) throw new Error("rule context used outside a sample");
    return this.waiting(this.device, name);
  }
}
