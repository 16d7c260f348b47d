/**
 * MEASUREMENT HARNESS ONLY (bench/cores.ts design "worker-pipeline"): the
 * stand-in pipeline in a worker thread. Drains the uplink rings (P1 first),
 * runs decode + rule + normalise, writes northbound records into the rings the
 * main thread publishes from. Stops on {cmd: "stop"}.
 */
import { parentPort, workerData } from "node:worker_threads";
import { Doorbell, SpscRing, type SpscRingHandle } from "../../core/spsc-ring.js";
import { LaneWriter, pump } from "./lanes.js";
import { northRecordLength, pipeline, threadId, writeNorth } from "./stand-in.js";

interface Data {
  in: SpscRingHandle[];
  out: SpscRingHandle[];
  bell: SharedArrayBuffer;
  site: string;
}

const d = workerData as Data;
const inRings = d.in.map((h) => SpscRing.attach(h));
const writer = new LaneWriter(d.out.map((h) => SpscRing.attach(h)));
const p = pump(
  inRings,
  new Doorbell(d.bell),
  (_lane, buf, at, length) => {
    const n = pipeline(buf, at, length, d.site);
    if (n) writer.offer(n.lane, northRecordLength(n), (b, o) => writeNorth(b, o, n), null);
  },
  { afterPass: () => writer.flush() },
);
const port = parentPort;
if (!port) throw new Error("pipeline-worker runs as a worker thread");
port.on("message", (m: { cmd: string }) => {
  if (m.cmd === "stop")
    void p.stop().then(() => {
      port.postMessage({ ev: "stopped", held: writer.heldCount });
      port.close();
    });
});
port.postMessage({ ev: "ready", tid: threadId() });
