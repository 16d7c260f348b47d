import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{core,protocols,devices,gateway,sim,cli,bench,fuzz,test}/**/*.test.ts"],
    exclude: ["test/interop/**", "test/crash/**", "test/hostile/**", "node_modules/**", "dist/**"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Network tests bind 127.0.0.1 on ephemeral ports; two workers match the 2-core box.
    pool: "forks",
    maxWorkers: 2,
    // CI reads a JSON report to print one "N passed, N failed" line (.ci/summary.mjs).
    reporters: process.env.CI ? ["default", ["json", { outputFile: ".ci/results/unit.json" }]] : ["default"],
  },
});
