// The broker first, as the gateway loads it: quiet-debug.ts must already have run when aedes
// brought mqtt-packet in, or mqtt-packet keeps its allocating loggers.
import "./embedded.js";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { describe, expect, it } from "vitest";
import { quietedNamespaces } from "./quiet-debug.js";

const require = createRequire(import.meta.url);
type Logger = ((...args: unknown[]) => void) & { enabled: boolean; namespace: string };
type CreateDebug = ((namespace: string) => Logger) & { enable(ns: string): void; disable(): string };
const createDebug = require(
  require.resolve("debug", { paths: [dirname(require.resolve("mqtt-packet"))] }),
) as CreateDebug;

describe("quiet-debug", () => {
  it("mqtt-packet's parser and writer got the logger that allocates nothing", () => {
    expect([...quietedNamespaces()].sort()).toEqual(["mqtt-packet:parser", "mqtt-packet:writeToStream"]);
  });

  it("a namespace DEBUG names still gets the real logger; other packages' loggers are untouched", () => {
    const quiet = createDebug("mqtt-packet:test-quiet");
    expect(quiet.enabled).toBe(false);
    expect(quiet.name).toBe("quietDebug");
    const other = createDebug("other-package:x");
    expect(other.name).not.toBe("quietDebug");
    const before = createDebug.disable();
    try {
      createDebug.enable("mqtt-packet:test-loud");
      const loud = createDebug("mqtt-packet:test-loud");
      expect(loud.enabled).toBe(true);
      expect(loud.name).not.toBe("quietDebug");
    } finally {
      createDebug.enable(before);
    }
  });
});
