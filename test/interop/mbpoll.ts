import { execFile } from "node:child_process";

export interface MbpollResult {
  /** Reference number -> value, as mbpoll prints them ("[7]: 0.32"). */
  values: Map<number, number>;
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs mbpoll asynchronously (the simulator shares this process's event loop). */
export function mbpoll(args: string[]): Promise<MbpollResult> {
  return new Promise((resolve, reject) => {
    execFile("mbpoll", [...args], { encoding: "utf8", timeout: 10_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === "ENOENT") {
        reject(new Error("mbpoll not found on PATH: install it with apt-get install mbpoll"));
        return;
      }
      const values = new Map<number, number>();
      for (const m of stdout.matchAll(/^\[(\d+)\]:\s+(-?[\d.]+(?:e[+-]?\d+)?)/gm))
        values.set(Number(m[1]), Number(m[2]));
      resolve({ values, stdout, stderr, code: err ? Number((err as { code?: number }).code ?? 1) : 0 });
    });
  });
}
