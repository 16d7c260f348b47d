/**
 * How long the end of a run waits on devices and the gateway: a gateway that does not answer
 * must not hold the report back.
 */

/**
 * How long stopping waits for what was under way (a device reconnecting after churn) and each
 * end-of-run restore.
 */
export const RESTORE_WITHIN_MS = 15_000;

/** `p`, or undefined once `ms` of real time have passed (a device or gateway that does not answer). */
export function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
