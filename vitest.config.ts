import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{gateway,devices,protocols,sim,bench,test}/**/*.test.ts"],
    exclude: ["test/interop/**", "node_modules/**", "dist/**"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Network tests bind 127.0.0.1 on ephemeral ports; two workers match the 2-core box.
    pool: "forks",
    maxWorkers: 2,
  },
});
