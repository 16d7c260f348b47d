import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { configJsonSchema } from "./schema.js";

describe("docs/config.schema.json", () => {
  it("is the schema the code validates against (regenerate with `npm run schema`)", () => {
    const committed = JSON.parse(readFileSync("docs/config.schema.json", "utf8"));
    expect(committed).toEqual(configJsonSchema());
  });
});
