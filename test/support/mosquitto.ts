/** A real mosquitto for the upstream tests: loopback only, no persistence (.ci/run installs it). */
import { type ChildProcess, execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { sleep } from "./harness.js";
import { killGroup, spawnGroup } from "./process-group.js";

export function haveMosquitto(): boolean {
  try {
    execFileSync("sh", ["-c", "command -v mosquitto"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Started with its config file in `dir` (`extra`: more lines of it); listening when this resolves.
 * A restart forgets retained messages.
 */
export async function startMosquitto(dir: string, port: number, extra = ""): Promise<ChildProcess> {
  const conf = join(dir, `mosquitto-${port}.conf`);
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n${extra}`);
  const child = spawnGroup("mosquitto", ["-c", conf], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (up) return child;
    await sleep(50);
  }
  await killGroup(child, 0, "SIGKILL");
  throw new Error("mosquitto did not start");
}
