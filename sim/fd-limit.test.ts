import { describe, expect, it } from "vitest";
import { FD_OVERHEAD, fdShortfall, fdsNeeded, openFileLimit } from "./fd-limit.js";

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max processes             7823                 7823                 processes
Max open files            1024                 4096                 files
Max locked memory         8388608              8388608              bytes
`;

describe("open files a simulated site needs", () => {
  it("reads the soft limit of /proc/self/limits; unlimited is Infinity; no /proc line, no figure", () => {
    expect(openFileLimit(LIMITS)).toBe(1024);
    expect(openFileLimit(LIMITS.replace("1024 ", "unlimited"))).toBe(Number.POSITIVE_INFINITY);
    expect(openFileLimit("Max processes 1 1 processes\n")).toBeUndefined();
  });

  it("a socket per MQTT device, three per kiosk (listener and its two connections), plus the process's own", () => {
    expect(fdsNeeded(4000, 2)).toBe(4000 + 6 + FD_OVERHEAD);
  });

  it("4,000 devices under 1024 are refused naming the option, the need, the limit and what to raise", () => {
    const why = fdShortfall(4000, 0, "--scale 2000", 1024);
    expect(why).toMatch(/^--scale 2000: 4000 MQTT devices need about 4064 open files/);
    expect(why).toMatch(/may open 1024 \(ulimit -n\): raise the limit \(ulimit -n 4096/);
    expect(fdShortfall(900, 0, "--scale 450", 1024)).toBeUndefined();
    expect(fdShortfall(10_000, 4, "--config site.yaml", undefined)).toBeUndefined();
  });
});
