import { BufferList } from "bl";
import { describe, expect, it, vi } from "vitest";
import { ParserList } from "./aedes-patches.js";

type List = InstanceType<typeof BufferList>;

function lists(): [List, List] {
  const parts = [Buffer.from([1, 2, 3]), Buffer.from([4]), Buffer.from([5, 6, 7, 8, 9])];
  const bl = new BufferList();
  const ours = new ParserList();
  for (const p of parts) {
    bl.append(p);
    ours.append(p);
  }
  // A consumed head as the parser leaves it.
  bl.consume(1);
  ours.consume(1);
  return [bl, ours];
}

function read(fn: () => number): number | string {
  try {
    return fn();
  } catch (err) {
    return `${(err as Error).name}`;
  }
}

describe("ParserList (the parser's byte list)", () => {
  it("reads what bl reads at every offset, across buffers and out of range alike", () => {
    const [bl, ours] = lists();
    for (const offset of [-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1.5, undefined]) {
      for (const m of ["readUInt8", "readUInt16BE", "readUInt32BE"] as const) {
        expect(
          read(() => ours[m](offset as number)),
          `${m}(${offset})`,
        ).toEqual(read(() => bl[m](offset as number)));
      }
    }
  });

  it("reads bytes held in one buffer without slicing them out (no Buffer per byte)", () => {
    const [, ours] = lists();
    const slice = vi.spyOn(BufferList.prototype, "slice");
    try {
      expect(ours.readUInt8(0)).toBe(2);
      expect(ours.readUInt8(2)).toBe(4);
      expect(ours.readUInt16BE(3)).toBe(0x0506);
      expect(ours.readUInt32BE(4)).toBe(0x06070809);
      expect(slice).not.toHaveBeenCalled();
      expect(ours.readUInt16BE(1)).toBe(0x0304); // spans two buffers: bl's own read
      expect(slice).toHaveBeenCalledTimes(1);
    } finally {
      slice.mockRestore();
    }
  });
});
