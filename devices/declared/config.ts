import { z } from "zod";

/**
 * The config fields of a declared profile's devices, beyond their binding's:
 * the values of its settings by name (checked against the profile's settings
 * in gateway/config/checks.ts, which knows the document).
 */
export const declaredConfig = {
  settings: z
    .record(z.string(), z.number())
    .default({})
    .meta({ description: "Values of the profile's settings, by name" }),
};
