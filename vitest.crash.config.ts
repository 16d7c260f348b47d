import { defineConfig } from "vitest/config";

// The crash suite (docs/durability.md): a real gateway process killed and restarted, a real mosquitto
// stopped and started. Minutes, not seconds: `npm run test:crash`, not part of `vitest run`.
export default defineConfig({
  test: {
    include: ["test/crash/**/*.test.ts"],
    testTimeout: 360_000,
    hookTimeout: 60_000,
    pool: "forks",
    // The two long files run side by side: the outage test mostly waits (30 s with upstream down).
    maxWorkers: 2,
    reporters: process.env.CI ? ["default", ["json", { outputFile: ".ci/results/crash.json" }]] : ["default"],
  },
});
