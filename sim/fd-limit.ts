/**
 * Open files a run needs against the ones this process may open. Every
 * simulated MQTT device holds one socket, so a site of thousands under a
 * common `ulimit -n` of 1024 used to attach about a thousand devices and fail
 * the rest with EMFILE: a load test that measures nothing. Checked before the
 * first device connects, so the run is refused with the figure to raise.
 */
import { openFileLimit } from "../core/index.js";

export { openFileLimit };

/** Besides the devices: stdio, Node's own handles, the alert reader, a socat pty, a gateway child's pipes. */
export const FD_OVERHEAD = 64;
/** A GK-3 kiosk: its listening socket and up to two connections (datasheet: "accepts up to 2"). */
const FDS_PER_KIOSK = 3;

export function fdsNeeded(mqttDevices: number, kiosks: number): number {
  return mqttDevices + FDS_PER_KIOSK * kiosks + FD_OVERHEAD;
}

/**
 * Undefined when the run fits, else the reason it does not, naming the limit
 * and the option that sized the site (`--scale N` or `--config FILE`).
 */
export function fdShortfall(
  mqttDevices: number,
  kiosks: number,
  sizedBy: string,
  limit = openFileLimit(),
): string | undefined {
  const need = fdsNeeded(mqttDevices, kiosks);
  if (limit === undefined || need <= limit) return undefined;
  const what = `${mqttDevices} MQTT devices${kiosks ? ` and ${kiosks} kiosks` : ""}`;
  return (
    `${sizedBy}: ${what} need about ${need} open files (a socket per device) but this process may open ${limit} (ulimit -n): ` +
    `raise the limit (ulimit -n ${Math.ceil(need / 1024) * 1024}, or LimitNOFILE= under systemd) or attach fewer devices`
  );
}
