import { defineConfig } from "vitest/config";

/** The hostile-load test (test/hostile): a minute against a real gateway process, run alone. */
export default defineConfig({
  test: {
    include: ["test/hostile/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 30_000,
    pool: "forks",
    maxWorkers: 1,
    reporters: process.env.CI
      ? ["default", ["json", { outputFile: ".ci/results/hostile.json" }]]
      : ["default"],
  },
});
