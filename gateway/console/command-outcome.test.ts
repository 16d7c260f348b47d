/**
 * What the console says became of a device command, from each result the gateway publishes for it
 * (docs/topics.md "Device commands", "Devices that are away"): an operator must never read a
 * command that waits, expired or was refused as done.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

type Outcome = (
  lang: string,
  body: Record<string, unknown>,
  fmtTime: (ms: number) => string,
) => [string, string];

const load = async () =>
  (await import(pathToFileURL(path.resolve("gateway/console/public/i18n.js")).href)) as {
    commandOutcome: Outcome;
  };
const fmtTime = (ms: number) => `T${ms}`;

describe("a device command's outcome in the console", () => {
  it("says each result of the GD-2's valve_close, in Chinese and English", async () => {
    const { commandOutcome } = await load();
    const zh = (b: Record<string, unknown>) => commandOutcome("zh-CN", b, fmtTime);
    const en = (b: Record<string, unknown>) => commandOutcome("en", b, fmtTime);
    expect(zh({ ok: true, sent: true, id: "c-1" })).toEqual(["已发送给设备", ""]);
    expect(en({ ok: true, sent: true, id: "c-1" })).toEqual(["sent to the device", ""]);
    expect(zh({ ok: true, reply: "ok", id: "c-1" })).toEqual(["设备回复：执行成功", ""]);
    expect(
      zh({ ok: false, reply: "busy", error: "device-busy", message: "命令“打开燃气阀”失败，设备忙" }),
    ).toEqual(["设备回复：设备忙，拒绝执行（命令“打开燃气阀”失败，设备忙）", "refused"]);
    expect(en({ ok: false, reply: "jammed", error: "device-jammed" })).toEqual([
      "the device replied: jammed",
      "refused",
    ]);
    // A Modbus write the device echoed: done, not merely sent.
    expect(zh({ ok: true })).toEqual(["设备已执行（设备确认写入）", ""]);
  });

  it("queued for a device away is not done; delivered later, or void after 10 minutes", async () => {
    const { commandOutcome } = await load();
    const zh = (b: Record<string, unknown>) => commandOutcome("zh-CN", b, fmtTime);
    const [queued, cls] = zh({ ok: true, sent: false, queued: true, deviceConnected: false, expiresAt: 42 });
    expect(queued).toBe("未送达，设备重新连接后发送，T42 前设备仍未连接则作废");
    expect(cls).toBe("refused");
    expect(zh({ ok: true, sent: true, waitedMs: 12_400 })).toEqual([
      "设备重新连接，命令已送达（等待 12 秒）",
      "",
    ]);
    expect(zh({ ok: false, sent: false, error: "downlink-expired", message: "…" })).toEqual([
      "设备 10 分钟内未连接，命令已作废，未执行",
      "refused",
    ]);
    expect(commandOutcome("en", { ok: false, sent: false, error: "downlink-dropped" }, fmtTime)[0]).toBe(
      "too many commands waiting for this device: dropped, not done",
    );
    expect(zh({ ok: false, sent: false, error: "device-removed", message: "…" })).toEqual([
      "设备已从配置中移除，命令未执行",
      "refused",
    ]);
    expect(zh({ ok: false, sent: false, error: "device-changed", message: "…" })).toEqual([
      "设备型号或下行配置已更改，命令未执行，请重新发送",
      "refused",
    ]);
  });

  it("refused before sending is said with the gateway's reason; a failure on the way as failed", async () => {
    const { commandOutcome } = await load();
    const zh = (b: Record<string, unknown>) => commandOutcome("zh-CN", b, fmtTime);
    expect(
      zh({ ok: false, error: "forbidden", message: "无权限：值班员不能向设备发送命令（需要主管）" }),
    ).toEqual(["被拒绝（无权限：值班员不能向设备发送命令（需要主管））", "refused"]);
    expect(zh({ ok: false, error: "bad-value" })).toEqual(["被拒绝（取值无效）", "refused"]);
    expect(zh({ ok: false, error: "too-many-commands" })).toEqual([
      "被拒绝（该设备一分钟内命令过多，请稍后再试）",
      "refused",
    ]);
    expect(zh({ ok: false, error: "timeout" })).toEqual(["失败（设备无应答）", "refused"]);
    expect(zh({ ok: false, error: "exception", exception: "ILLEGAL_DATA_VALUE" })).toEqual([
      "失败（设备拒绝执行：ILLEGAL_DATA_VALUE）",
      "refused",
    ]);
    expect(commandOutcome("en", { ok: false, error: "forbidden" }, fmtTime)).toEqual([
      "refused (your role may not send device commands)",
      "refused",
    ]);
  });
});
