import { describe, expect, it } from "vitest";
import { RtuFraming, TcpFraming } from "./bus-framing.js";

const hex = (s: string) => Uint8Array.from(s.split(/\s+/).map((h) => Number.parseInt(h, 16)));
const READ = { fn: 3, unit: 5, address: 0, count: 1 } as const;

describe("RTU framing", () => {
  const rtu = new RtuFraming(9600, 11);

  it("frames by silence and CRC, answers by unit id, and adds the wire time at 9600 8E1", () => {
    const prep = rtu.prepare(READ);
    expect(prep.frame.length).toBe(8);
    // 8 request bytes + 7 reply bytes, 11 bits each, at 9600 baud.
    expect(rtu.wireMs(prep)).toBe(Math.ceil((15 * 11 * 1000) / 9600));
    expect(rtu.silenceMs).toBeGreaterThan(0);
    expect(rtu.unanswered({ fn: 5, unit: 0, address: 0, value: true })).toBe(true);
    expect(rtu.unanswered(READ)).toBe(false);
    // MFS-8 datasheet: unit 5's exception reply, then a reply from unit 5 to a read.
    expect(rtu.push(hex("05 83 02 81 30"))).toBe(true);
    expect(rtu.next()).toBe("frame");
    expect(rtu.answers(READ)).toBe(true);
    expect(rtu.answers({ ...READ, unit: 6 })).toBe(false);
    expect([rtu.pduStart, rtu.pduEnd]).toEqual([1, 3]);
    expect(rtu.next()).toBe("need-more");
    expect(rtu.lineErrorRecovery).toBe("flush");
  });
});

describe("TCP framing", () => {
  it("stamps a new transaction id per attempt and answers only the outstanding one", () => {
    const tcp = new TcpFraming();
    const prep = tcp.prepare(READ);
    tcp.stamp(prep.frame);
    tcp.stamp(prep.frame);
    expect([prep.frame[0], prep.frame[1]]).toEqual([0, 2]);
    expect(tcp.wireMs()).toBe(0);
    expect(tcp.silenceMs).toBe(0);
    expect(tcp.unanswered()).toBe(false);
    // A late reply to attempt 1, then the reply to attempt 2: exception 02 from unit 5.
    tcp.push(hex("00 01 00 00 00 03 05 83 02 00 02 00 00 00 03 05 83 02"));
    expect(tcp.next()).toBe("frame");
    expect(tcp.answers(READ)).toBe(false);
    expect(tcp.next()).toBe("frame");
    expect(tcp.answers(READ)).toBe(true);
    expect([tcp.pduStart, tcp.pduEnd]).toEqual([7, 9]);
    // The outstanding transaction id with protocol id 1: delimited, but no Modbus reply.
    tcp.push(hex("00 02 00 01 00 03 05 83 02"));
    expect(tcp.next()).toBe("frame");
    expect(tcp.answers(READ)).toBe(false);
    expect(tcp.lineErrorRecovery).toBe("resync");
  });
});
