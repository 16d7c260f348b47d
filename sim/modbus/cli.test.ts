import { afterEach, describe, expect, it } from "vitest";
import { runSimCli, type SimHandle, UsageError } from "./cli.js";

/** The simulator's script: a fault it reports as applied must be one it can put on the wire. */
describe("Modbus simulator script: fault arguments", () => {
  const handles: SimHandle[] = [];
  afterEach(async () => {
    for (const h of handles.splice(0)) await h.stop();
  });
  const start = async (argv: string[]) => {
    const h = await runSimCli(argv);
    handles.push(h);
    return h;
  };

  it("exception: a code the Modbus protocol defines; anything else is refused and changes nothing", async () => {
    const sim = await start(["rtu", "--socat", "--units", "5", "--lv4-units", "9"]);
    const panel = sim.panels.get(5);
    expect(() => sim.script("5 exception banana")).toThrow(
      /exception banana: not a Modbus exception code .*the MFS-8 datasheet lists 0x01, 0x02/,
    );
    expect(() => sim.script("5 exception 0")).toThrow(/not a Modbus exception code/);
    expect(() => sim.script("5 exception 7")).toThrow(/not a Modbus exception code/);
    expect(() => sim.script("5 exception 0x0c")).toThrow(/not a Modbus exception code/);
    expect(panel?.faults.exception).toBeUndefined();
    expect(sim.script("5 exception 2")).toBe("5: exception 2");
    expect(panel?.faults.exception).toBe(2);
    // A failed controller: off the datasheet, as faults are, but a code a device can send.
    expect(sim.script("5 exception 4")).toBe("5: exception 4");
    expect(panel?.faults.exception).toBe(4);
    expect(sim.script("5 exception off")).toBe("5: exception off");
    expect(panel?.faults.exception).toBeUndefined();
    // The LV-4 answers 0x03 for a set-point out of range (its datasheet).
    expect(sim.script("9 exception 0x03")).toBe("9: exception 0x03");
    expect(sim.tanks.get(9)?.faults.exception).toBe(3);
  });

  it("silent: on or off, and a word it does not know is refused (it used to turn silent off)", async () => {
    const sim = await start(["rtu", "--socat", "--units", "5"]);
    const panel = sim.panels.get(5);
    sim.script("5 silent on");
    expect(() => sim.script("5 silent maybe")).toThrow(/silent maybe: give on or off/);
    expect(panel?.faults.silent).toBe(true);
    sim.script("5 silent off");
    expect(panel?.faults.silent).toBe(false);
  });

  it("a scripted reading that is not a number, or a state not on/off, is refused and changes nothing", async () => {
    const rtu = await start(["rtu", "--socat", "--units", "5", "--lv4-units", "9"]);
    const tank = rtu.tanks.get(9);
    const level = tank?.getLevel();
    // "9 level x" used to set the level to 0 mm (NaN read as 0): a low-tank alert from a typo.
    expect(() => rtu.script("9 level x")).toThrow(/level x: give a number/);
    expect(() => rtu.script("9 temperature cold")).toThrow(/temperature cold: give a number/);
    expect(tank?.getLevel()).toBe(level);
    expect(rtu.script("9 level 800")).toBe("9: level 800");
    expect(tank?.getLevel()).toBe(800);
    const panel = rtu.panels.get(5);
    expect(() => rtu.script("5 pressure low")).toThrow(/pressure low: give a number/);
    expect(() => rtu.script("5 mains-fail maybe")).toThrow(/mains-fail maybe: give on or off/);
    expect(panel?.status()).toBe(0);
    const tcp = await start(["tcp", "--port", "0", "--count", "1"]);
    const port = tcp.ports[0] as number;
    expect(() => tcp.script(`${port} door ajar`)).toThrow(/door ajar: give open or closed/);
    expect(() => tcp.script(`${port} tilt sideways`)).toThrow(/tilt sideways: give on or off/);
    expect(() => tcp.script(`${port} paper some`)).toThrow(/paper some: give a number/);
    expect(tcp.kiosks.get(port)?.inputRegisters()[4]).toBe(0);
    expect(tcp.script(`${port} door open`)).toBe(`${port}: door open`);
    expect(tcp.kiosks.get(port)?.inputRegisters()[4]).toBe(1);
  });

  it("corrupt-crc is RTU only: refused on a Modbus TCP kiosk; counts and delays must be whole numbers", async () => {
    const tcp = await start(["tcp", "--port", "0", "--count", "1"]);
    const port = tcp.ports[0] as number;
    expect(() => tcp.script(`${port} corrupt-crc 3`)).toThrow(/Modbus TCP, which has no CRC/);
    expect(tcp.kiosks.get(port)?.faults.corruptCrc).toBe(0);
    expect(() => tcp.script(`${port} exception 9`)).toThrow(/GK-3 datasheet lists 0x01, 0x02/);
    expect(() => tcp.script(`${port} late soon`)).toThrow(/late soon: give ms/);
    expect(tcp.script(`${port} late 300`)).toBe(`${port}: late 300`);
    const rtu = await start(["rtu", "--socat", "--units", "5"]);
    expect(() => rtu.script("5 corrupt-crc lots")).toThrow(/corrupt-crc lots/);
    expect(rtu.script("5 corrupt-crc 2")).toBe("5: corrupt-crc 2");
    expect(rtu.panels.get(5)?.faults.corruptCrc).toBe(2);
  });

  it("malformed-reply faults are armed for N replies (default 1), each on the transport it can break", async () => {
    const rtu = await start(["rtu", "--socat", "--units", "5", "--lv4-units", "9"]);
    expect(rtu.script("5 truncate")).toBe("5: truncate");
    expect(rtu.script("9 wrong-unit 3")).toBe("9: wrong-unit 3");
    expect(rtu.panels.get(5)?.faults.malformed).toMatchObject({ truncate: 1, "wrong-unit": 0 });
    expect(rtu.tanks.get(9)?.faults.malformed).toMatchObject({ truncate: 0, "wrong-unit": 3 });
    expect(() => rtu.script("5 noise often")).toThrow(/noise often: give how many replies/);
    const tcp = await start(["tcp", "--port", "0", "--count", "1"]);
    const port = tcp.ports[0] as number;
    expect(() => tcp.script(`${port} noise 2`)).toThrow(/noise: GK-3 is on Modbus TCP \(RTU only\)/);
    expect(() => rtu.script("5 wrong-transaction")).toThrow(
      /wrong-transaction: MFS-8 is on Modbus RTU, which has no MBAP header \(Modbus TCP only\)/,
    );
    expect(tcp.script(`${port} wrong-function 2`)).toBe(`${port}: wrong-function 2`);
    expect(tcp.script(`${port} wrong-length`)).toBe(`${port}: wrong-length`);
    expect(tcp.kiosks.get(port)?.faults.malformed).toMatchObject({
      "wrong-function": 2,
      "wrong-length": 1,
      noise: 0,
    });
    expect(rtu.panels.get(5)?.faults.malformed["wrong-transaction"]).toBe(0);
  });

  it("serves every line setting the datasheets offer (8N2 at 115200 baud here)", async () => {
    const sim = await start([
      "rtu",
      "--socat",
      "--units",
      "5",
      "--parity",
      "none",
      "--stop-bits",
      "2",
      "--baud",
      "115200",
    ]);
    expect(sim.panels.get(5)).toBeDefined();
  });

  it.each([
    [["tcp", "--count", "abc"], /--count abc: give a positive whole number/],
    [["tcp", "--count", "0"], /--count 0/],
    [["tcp", "--port", "http"], /--port http: give a whole number/],
    [["tcp", "--port", "70000"], /not a TCP port/],
    [["rtu", "--units", "1"], /rtu needs --pty-link <tty path> or --socat/],
    // The MFS-8 and LV-4 line settings: 9600-115200 baud, 8E1, 8N1 or 8N2 (datasheets, "Link").
    [["rtu", "--socat", "--parity", "odd"], /--parity odd: .*even \(8E1\) or none/],
    [["rtu", "--socat", "--stop-bits", "2"], /--parity even --stop-bits 2: .*8E1, 8N1 and 8N2 only/],
    [
      ["rtu", "--socat", "--baud", "4800"],
      /--baud 4800: the datasheets offer 9600, 19200, 38400, 57600, 115200/,
    ],
    [["serve"], /unknown mode serve: give rtu or tcp\nusage: node dist\/sim\/modbus\/cli.js rtu\|tcp/],
    [["rtu", "--socat", "--bauds", "9600"], /^Unknown option '--bauds' \(--help lists the options\)$/],
    [["tcp", "--count"], /^Option '--count <value>' argument missing \(--help lists the options\)$/],
  ])("%j is a usage error, serving nothing", async (argv, reason) => {
    await expect(runSimCli(argv)).rejects.toSatisfy(
      (err: unknown) => err instanceof UsageError && reason.test((err as Error).message),
    );
  });
});
