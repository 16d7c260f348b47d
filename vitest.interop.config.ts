import { defineConfig } from "vitest/config";

// Interop: real pseudo-terminals (socat) and a third-party Modbus master (mbpoll).
// CI installs both with apt-get before `npm run test:interop`.
export default defineConfig({
  test: {
    include: ["test/interop/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // One file at a time: ptys and child processes, on a 2-core box.
    maxWorkers: 1,
    reporters: process.env.CI
      ? ["default", ["json", { outputFile: ".ci/results/interop.json" }]]
      : ["default"],
  },
});
