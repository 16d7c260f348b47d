/**
 * 值班员看到的中文告警文字（site.locale: zh-CN）。网关自身的告警代码和多种
 * 设备共用的代码各有一个标题、可选的数值细节和默认处置建议（只属于一种设备
 * 的代码，文字写在该设备的 profile 里：AlertSpec.text）；每种状态变化一个短语。
 * 处置建议可在配置 alerts.actions 中按代码改写。
 */
import type { Catalogue } from "./catalogue.js";
import { num, type SpanWords, span, withProfileTexts } from "./catalogue.js";
import { zhJoin } from "./zh-join.js";

const ZH_SPAN: SpanWords = {
  day: (n) => `${n} 天`,
  hour: (n) => `${n} 小时`,
  minute: (n) => `${n} 分钟`,
  second: (n) => `${n} 秒`,
  join: " ",
};
/** A span of time in Chinese: "2 小时 5 分钟", "30 秒". */
export const zhSpan = (ms: unknown): string => span(ms, ZH_SPAN);

/** DEVICE_MISBEHAVING's causes (gateway/device-rate.ts MISBEHAVING_CAUSES). */
const MISBEHAVING_CAUSE_ZH: Readonly<Record<string, string>> = {
  "over its message rate": "超过消息速率",
  "over its share of the P1 lane": "积压的一级消息超过其份额",
  "over its share of the alert lane": "积压的告警消息超过其份额",
};

export const zhCN: Catalogue = {
  codes: withProfileTexts("zh-CN", {
    BATTERY_LOW: {
      title: "电池电量低",
      detail: (d) => (num(d, "battery") === null ? null : `剩余 ${num(d, "battery")}%`),
      action: "安排在一周内为住户更换设备电池。",
    },
    TAMPER: {
      title: "设备外壳被打开",
      action: "联系住户或物业核实是否有人拆动设备，必要时派人检查。",
    },
    DEVICE_LOST: {
      title: "设备失联",
      detail: (d) => (num(d, "silentForMs") ? `已 ${zhSpan(d.silentForMs)}无信号` : null),
      action: "检查设备电源和网络；住户设备失联时致电住户，确认其安全并安排检修。",
    },
    WELFARE_CHECK: {
      title: "长时间无活动",
      detail: (d) => (num(d, "periodMs") ? `超过 ${zhSpan(d.periodMs)}无活动` : null),
      action: "致电住户问候；无人接听时联系家属或派人上门探访。",
    },
    FAULT: {
      title: "设备故障",
      detail: (d) => (d.faultCode === undefined ? null : `故障码 ${String(d.faultCode)}`),
      action: "通知维保单位检修；消防设备故障期间加强人工巡查。",
    },
    POWER_FAIL: {
      title: "主电源断电",
      action: "设备正在使用备用电池：通知物业检查供电，尽快恢复。",
    },
    STORAGE_DEGRADED: {
      title: "网关存储故障",
      action: "告警仍实时推送，但网关重启后会丢失：请通知技术人员检查磁盘。",
    },
    STORAGE_DAMAGED_AT_START: {
      title: "网关存储数据受损",
      detail: (d) =>
        [
          num(d, "bytes") ? `${num(d, "bytes")} 字节损坏` : null,
          num(d, "missingSegments") ? `${num(d, "missingSegments")} 个数据文件缺失` : null,
        ]
          .filter((x) => x !== null)
          .join("，") || null,
      action:
        "网关启动时发现存储数据损坏或缺失，重启前的部分告警、确认或关闭可能已丢失或重新出现：请逐一核对设备和住户的实际情况，并通知技术人员检查磁盘。",
    },
    CONFIG_REFUSED: {
      title: "网关配置文件有误",
      detail: (d) => (typeof d.file === "string" ? d.file : null),
      action:
        "网关上次启动时拒绝了站点配置文件，目前按上一次正常运行的配置工作：之后对配置的修改未生效。请通知技术人员修正配置文件（linli config check 会列出每一处错误），然后执行 linli reload。",
    },
    DEVICE_MISBEHAVING: {
      title: "设备发送异常",
      detail: (_d, causes) =>
        causes.length === 0 ? null : causes.map((c) => MISBEHAVING_CAUSE_ZH[c] ?? c).join("、"),
      action:
        "设备持续超频发送消息，或积压的一级消息（呼叫、报警）或其他告警消息超过其份额：超过速率的普通消息已丢弃（一级消息不会丢弃）；超过份额的消息暂不接收，由设备稍后重发，以免耽误其他住户的呼叫和告警。请通知技术人员检查设备或是否有人冒用其账号。",
    },
  }),
  transitions: {
    raised: () => "",
    repeated: (a) => `再次发生（共 ${a.count} 次）`,
    reactivated: () => "恢复后再次发生",
    // Spaced only around a Latin name or id: "已由 duty-desk 确认", "已由王明确认".
    acknowledged: (a) => zhJoin("已由", a.by ?? "值班员", "确认"),
    cleared: () => "已恢复正常，待确认",
    closed: () => "已结束",
    "cancelled-by-resident": () => "住户已取消",
    delivered: () => "确认已送达住户设备",
    shelved: (a) => zhJoin("已由", a.by ?? "值班员", "搁置", a.until ? zhJoin("至", a.until) : ""),
    unshelved: () => "已取消搁置",
    "shelve-expired": () => "搁置到期，重新提示",
    "out-of-service": (a) => `设备已停用${a.by ? `（${a.by}）` : ""}`,
    "in-service": () => "设备已恢复使用",
    chattering: () => "频繁反复，暂缓推送",
    "chattering-ended": () => "已停止反复",
    "flood-released": () => "告警洪峰结束后补发",
    escalated: (a) => `${zhSpan(a.unacknowledgedMs)}无人确认，第 ${a.level} 次升级`,
    changed: () => "情况有变化",
  },
  windowEnded: "呼叫窗口已结束，仍无人确认",
  replaced: (w) =>
    "priority" in w
      ? `已结束：情况变化，优先级改为 P${w.priority}，由新告警接替，请处理新告警`
      : `已结束：${w.ended === "maintenance" ? "维护" : "测试模式"}已结束，由新告警接替，请处理新告警`,
  gone: (w, modelName) =>
    "removed" in w
      ? `已结束：${w.removed === "household" ? "住户" : "设备"}已从站点配置中删除`
      : "corrected" in w
        ? w.corrected === "reload"
          ? "已结束：配置已修正并重新加载"
          : "已结束：配置已修正，网关已重新启动"
        : `已结束：站点配置中该设备已更换为${modelName ?? w.model}`,
  recordedAwaitingAck: "已记录，待确认",
  testPrefix: "【测试】",
  declaredAction: "按该设备的处置规程处理，必要时派人到现场查看。",
  declaredPeak: (v, unit, doubtful) =>
    `最高 ${v}${unit ? ` ${unit}` : ""}${doubtful ? "（传感器故障中，读数存疑）" : ""}`,
  declaredSent: (command) => `网关已发送命令 ${command}`,
  declaredQueued: (command) => `命令 ${command} 尚未送达：设备未连接，将在其重新连接后发送`,
  detailSep: "，",
  afterTitle: "：",
  beforeTransition: "；",
  bracket: (s) => `（${s}）`,
  unnamedHousehold: (id) => `住户 ${id}`,
  unnamedDevice: (model, id) => `${model ?? "设备"} ${id}`,
  deviceAt: (device, location) => (location ? `${device}（${location}）` : device),
  householdWith: (household, resident) => (resident ? `${household} ${resident}` : household),
  of: (owner, thing) => zhJoin(owner, "的", thing),
  // "，": a title can start with what the device's name ends with ("入户门磁" + "门长时间未关").
  deviceAlert: (device, title) => `${device}，${title}`,
  place: (household, device) => [household, device].filter((p) => p !== null).join("，"),
};
