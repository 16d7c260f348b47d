// Texts of the console page, zh-CN first (the operators' language), English beside.
// Alert codes stay English identifiers on the wire; these are the names people read.
// An alert's own `message` and `action` (in the site's locale) are shown when present.

export const STRINGS = {
  "zh-CN": {
    title: "邻里 · 运营控制台",
    login: "登录",
    logout: "退出",
    // The logged-in operator's role (docs/security.md "Operator roles"): what the page offers.
    roles: { viewer: "查看员（只读）", responder: "值班员", supervisor: "主管" },
    roleTitle: "角色",
    username: "用户名",
    password: "密码",
    loginHint: "使用您的 MQTT 运营账号登录",
    wrongPassword: "用户名或密码错误",
    tooManyAttempts: "登录尝试过多，请 {n} 分钟后再试",
    // A login ban on the desk's address (docs/security.md "Login bans"); {t}: HH:MM, site time.
    loginsPaused: "此地址的登录已暂停至 {t}（登录失败次数过多），到时自动恢复。",
    cannotReach: "无法连接网关",
    gatewayBusy: "网关正忙，暂时无法核对密码，请稍后再试",
    connected: "已连接",
    reconnecting: "正在重新连接…",
    gatewayOffline: "网关离线",
    openAlerts: "当前告警",
    noAlerts: "没有未处理的告警",
    // Never an all-clear while the page is not live: it cannot know.
    noAlertsUnknown: "未连接网关，无法确认当前有没有告警",
    notLiveSince:
      "与网关的连接已于 {t} 断开：下面是断开前的情况，可能已过时，新告警不会显示。正在自动重新连接…",
    notLiveYet: "正在连接网关，尚未收到告警信息…",
    // Connected, the retained states still arriving: an empty or short list is not the whole truth yet.
    syncing: "正在从网关同步告警（已收到 {n} 条）…同步完成前列表可能不全，不能据此认为没有告警",
    syncingOf: "正在从网关同步告警（已收到 {n} 条，共 {m} 条）…同步完成前列表可能不全，不能据此认为没有告警",
    syncingShort: "正在同步…",
    // Was synced; the summary changed since and what is held has not matched it for a while.
    syncDrift:
      "收到的告警与网关的汇总不一致（已收到 {n} 条，网关共 {m} 条），可能漏收了告警，正在向网关核对…核对完成前列表可能不全",
    syncDriftShort: "正在核对…",
    syncResolving: "收到的告警与网关的汇总不一致，正在向网关核对未结束告警清单…",
    syncResolved: "已与网关核对：重新获取 {n} 条缺失或过期的告警，移除 {m} 条已结束的告警",
    foldLow: "收起三级、四级告警（{n} 条）",
    unfoldLow: "展开三级、四级告警（{n} 条）",
    alertsCount: "{n} 条",
    unackedCount: "（{n} 条未确认）",
    colon: "：",
    // Around a note in a line of Chinese text: full-width, as the colon.
    open: "（",
    close: "）",
    // Between the alerts named in the P1 bar.
    listSep: "；",
    p1Pending: "{n} 条一级告警未确认",
    p1Show: "查看",
    awayConfirm: "设为外出（暂停关怀检查）",
    backConfirm: "已回家（恢复关怀检查）",
    // What a result answers, named for people (the wire says ack, service, away …).
    actions: {
      ack: "确认",
      shelve: "搁置",
      unshelve: "取消搁置",
      service: "设备停用/恢复",
      away: "住户外出/回家",
      command: "设备命令",
    },
    // A device command's refusal (docs/topics.md "Commands"), for people.
    cmdErrors: {
      exception: "设备拒绝执行",
      timeout: "设备无应答",
      transport: "与设备的连接中断",
      "unknown-command": "该设备不支持此命令",
      "unknown-device": "没有这台设备",
      "bad-value": "取值无效",
      forbidden: "您的角色无权向设备发送命令",
      internal: "网关内部错误，命令可能未送达",
      other: "总线无法完成请求",
      "no-downlink": "该设备没有下行通道，无法接收命令",
      "too-many-commands": "该设备一分钟内命令过多，请稍后再试",
    },
    // Device commands offered from the console (docs/console.md "设备命令"): the buttons, the
    // confirmation and what became of a command, as the gateway's results say it (docs/topics.md).
    cmdSend: "发送命令",
    cmdConfirm: "确认{command}？",
    // An actuating command (a gas valve): asked, with what it does on site.
    cmdActuates: "此命令会动作现场设备（{device}）。请确认现场情况后再提交。",
    cmdValue: "数值（{min} 至 {max} 的整数）",
    cmdOutcome: {
      sent: "已发送给设备",
      done: "设备已执行（设备确认写入）",
      queuedUntil: "，{t} 前设备仍未连接则作废",
      delivered: "设备重新连接，命令已送达（等待 {s} 秒）",
      reply: "设备回复：{r}",
      replies: {
        ok: "执行成功",
        busy: "设备忙，拒绝执行",
        fault: "设备故障，未执行",
        unknown: "设备不认识该命令",
      },
      "downlink-expired": "设备 10 分钟内未连接，命令已作废，未执行",
      "downlink-dropped": "等待该设备的命令过多，此命令已丢弃，未执行",
      "downlink-withdrawn": "已不再需要，命令已撤回，未执行",
      "device-removed": "设备已从配置中移除，命令未执行",
      "device-changed": "设备型号或下行配置已更改，命令未执行，请重新发送",
      failed: "失败",
    },
    devices: "设备",
    stations: "消防站与自助终端",
    households: "住户",
    results: "操作结果",
    flood:
      "告警洪峰：10 分钟内新增 {n} 条告警。三级、四级新告警暂不显示，洪峰结束后再显示；一级、二级照常显示，请先处理一级告警",
    ack: "确认",
    shelve: "搁置",
    unshelve: "取消搁置",
    outOfService: "停用",
    inService: "恢复使用",
    away: "外出",
    back: "已回家",
    note: "备注（可选）",
    reasonNote: "原因（可选）",
    shelveFor: "搁置时长",
    reason: "原因",
    cancel: "取消",
    confirm: "提交",
    age: "已持续",
    raisedAt: "发生时间",
    // As the operators' guide says it ("第 2 次升级"): the alert's escalationLevel counts escalations.
    escalationLevel: "第 {n} 次升级",
    ackedBy: "确认人",
    shelvedBy: "搁置人",
    resident: "住户",
    phone: "电话",
    device: "设备",
    theGateway: "本网关",
    location: "位置",
    action: "处置",
    state: "状态",
    online: "在线",
    lost: "失联",
    offline: "离线",
    // No status yet: the gateway has had no message from it (a DS-10 may wait an hour for its heartbeat).
    noMessageYet: "尚无消息",
    battery: "电量",
    lastReading: "最新读数",
    monitored: "看护中",
    awayState: "外出",
    awayUntil: "（至 {t}）",
    language: "English",
    newP1: "新的一级告警",
    ok: "成功",
    refused: "被拒绝",
    notDelivered: "未送达，设备重新连接后发送",
    urgent: "长按求助",
    test: "测试",
    cancelledByResident: "住户已取消",
    count: "次数",
    priority: { 1: "一级 · 生命安全", 2: "二级 · 紧急", 3: "三级 · 注意", 4: "四级 · 提示" },
    states: {
      "active-unacknowledged": "未确认",
      "active-acknowledged": "已确认",
      "cleared-unacknowledged": "已恢复 · 待确认",
      // A call or fall has no "normal" to return to: its window ended and nobody has acknowledged it.
      "window-over-unacknowledged": "呼叫窗口已结束 · 未确认",
      closed: "已关闭",
    },
    suppression: { shelved: "已搁置", suppressed: "已抑制", "out-of-service": "已停用" },
    models: {
      ec200: "紧急呼叫器",
      ds10: "门磁",
      mfs8: "微型消防站",
      gk3: "自助服务终端",
      gd2: "燃气报警器",
      lv4: "消防水箱液位计",
    },
    // A household or device nobody named, said with what it is (as the gateway's messages say it).
    unnamedHousehold: "住户 {id}",
    unnamedDevice: "设备 {id}",
    units: { minutes: "分钟", hours: "小时", seconds: "秒", days: "天" },
  },
  en: {
    title: "Linli · operators' console",
    login: "Log in",
    logout: "Log out",
    roles: { viewer: "Viewer (read only)", responder: "Responder", supervisor: "Supervisor" },
    roleTitle: "Role",
    username: "Username",
    password: "Password",
    loginHint: "Log in with your MQTT operator account",
    wrongPassword: "Wrong username or password",
    tooManyAttempts: "Too many attempts, try again in {n} min",
    loginsPaused:
      "Logins from this address are paused until {t} (too many failed logins); they resume by themselves.",
    cannotReach: "Cannot reach the gateway",
    gatewayBusy: "The gateway is busy and cannot check the password now; try again shortly",
    connected: "Connected",
    reconnecting: "Reconnecting…",
    gatewayOffline: "Gateway offline",
    openAlerts: "Open alerts",
    noAlerts: "No open alerts",
    noAlertsUnknown: "Not connected to the gateway: cannot tell whether there are open alerts",
    notLiveSince:
      "Connection to the gateway lost at {t}: what follows is as it was then and may be out of date; new alerts are not shown. Reconnecting…",
    notLiveYet: "Connecting to the gateway, no alerts received yet…",
    syncing:
      "Syncing alerts from the gateway ({n} received so far)… Until it is done the list may be incomplete: do not take it as all clear",
    syncingOf:
      "Syncing alerts from the gateway ({n} of {m} received)… Until it is done the list may be incomplete: do not take it as all clear",
    syncingShort: "Syncing…",
    syncDrift:
      "The alerts received no longer match the gateway's summary ({n} received, the gateway has {m}): some may have been missed; checking with the gateway… Until then the list may be incomplete",
    syncDriftShort: "Checking…",
    syncResolving:
      "The alerts received do not match the gateway's summary: asking the gateway which alerts are open…",
    syncResolved:
      "Checked with the gateway: fetching {n} missing or outdated alerts again, removed {m} closed ones",
    foldLow: "Fold P3 and P4 alerts ({n})",
    unfoldLow: "Show P3 and P4 alerts ({n})",
    alertsCount: "{n} open",
    unackedCount: " ({n} unacknowledged)",
    colon: ": ",
    listSep: "; ",
    open: " (",
    close: ")",
    p1Pending: "{n} P1 alert(s) not acknowledged",
    p1Show: "Show",
    awayConfirm: "Set away (welfare checks pause)",
    backConfirm: "Back home (welfare checks resume)",
    actions: {
      ack: "Acknowledge",
      shelve: "Shelve",
      unshelve: "Unshelve",
      service: "Device service",
      away: "Household away",
      command: "Device command",
    },
    cmdErrors: {
      exception: "the device refused it",
      timeout: "no answer from the device",
      transport: "the link to the device is down",
      "unknown-command": "not a command of this device",
      "unknown-device": "no such device",
      "bad-value": "value out of range",
      forbidden: "your role may not send device commands",
      internal: "gateway error, the command may not have reached the device",
      other: "the bus could not complete the request",
      "no-downlink": "this device has no downlink to take commands",
      "too-many-commands": "too many commands to this device in the last minute; try again shortly",
    },
    cmdSend: "Send command",
    cmdConfirm: "{command}?",
    cmdActuates:
      "This command moves equipment on site ({device}). Check the situation there before you submit.",
    cmdValue: "Value (an integer from {min} to {max})",
    cmdOutcome: {
      sent: "sent to the device",
      done: "done (the device confirmed the write)",
      queuedUntil: ", void if the device has not connected by {t}",
      delivered: "the device reconnected and the command was sent (after {s} s)",
      reply: "the device replied: {r}",
      replies: {
        ok: "done",
        busy: "busy, refused",
        fault: "fault, not done",
        unknown: "does not know this command",
      },
      "downlink-expired": "the device did not connect within 10 minutes: void, not done",
      "downlink-dropped": "too many commands waiting for this device: dropped, not done",
      "downlink-withdrawn": "no longer needed: withdrawn, not done",
      "device-removed": "the device was removed from the configuration: not done",
      "device-changed": "the device's model or downlink changed: not done, send it again",
      failed: "failed",
    },
    devices: "Devices",
    stations: "Fire stations and kiosks",
    households: "Households",
    results: "Results",
    flood:
      "Alert flood: {n} new alerts in 10 minutes. New P3 and P4 alerts are held and shown when the flood ends; P1 and P2 are shown as always. Handle P1 first",
    ack: "Acknowledge",
    shelve: "Shelve",
    unshelve: "Unshelve",
    outOfService: "Out of service",
    inService: "Back in service",
    away: "Away",
    back: "Back home",
    note: "Note (optional)",
    reasonNote: "Reason (optional)",
    shelveFor: "Shelve for",
    reason: "Reason",
    cancel: "Cancel",
    confirm: "Send",
    age: "Open for",
    raisedAt: "Raised",
    escalationLevel: "Escalation level {n}",
    ackedBy: "Acknowledged by",
    shelvedBy: "Shelved by",
    resident: "Resident",
    phone: "Phone",
    device: "Device",
    theGateway: "this gateway",
    location: "Location",
    action: "Action",
    state: "State",
    online: "online",
    lost: "lost",
    offline: "offline",
    noMessageYet: "no message yet",
    battery: "Battery",
    lastReading: "Last reading",
    monitored: "monitored",
    awayState: "away",
    awayUntil: " (until {t})",
    language: "中文",
    newP1: "New P1 alert",
    ok: "done",
    refused: "refused",
    notDelivered: "not delivered yet: sent when it reconnects",
    urgent: "held the button",
    test: "test",
    cancelledByResident: "cancelled by the resident",
    count: "Count",
    priority: { 1: "P1 · life safety", 2: "P2 · urgent", 3: "P3 · attention", 4: "P4 · information" },
    states: {
      "active-unacknowledged": "unacknowledged",
      "active-acknowledged": "acknowledged",
      "cleared-unacknowledged": "cleared, unacknowledged",
      "window-over-unacknowledged": "call window over, unacknowledged",
      closed: "closed",
    },
    suppression: { shelved: "shelved", suppressed: "suppressed", "out-of-service": "out of service" },
    models: {
      ec200: "Pendant",
      ds10: "Door sensor",
      mfs8: "Fire station",
      gk3: "Kiosk",
      gd2: "Gas detector",
      lv4: "Tank level sensor",
    },
    unnamedHousehold: "household {id}",
    unnamedDevice: "device {id}",
    units: { minutes: "min", hours: "h", seconds: "s", days: "d" },
  },
};

// The titles the alerts' own messages use (gateway/content/messages.*.ts, the operators' guide):
// gateway/console/code-names.test.ts holds them equal.
export const CODE_NAMES = {
  "zh-CN": {
    EMERGENCY_CALL: "紧急呼叫",
    FALL_DETECTED: "疑似跌倒",
    TAMPER: "设备外壳被打开",
    BATTERY_LOW: "电池电量低",
    DEVICE_LOST: "设备失联",
    DOOR_HELD_OPEN: "门长时间未关",
    WELFARE_CHECK: "长时间无活动",
    FIRE_ALARM: "火警",
    HYDRANT_PRESSURE_LOW: "消防水压不足",
    EXTINGUISHER_MISSING: "灭火器不在位",
    FAULT: "设备故障",
    POWER_FAIL: "主电源断电",
    KIOSK_OUT_OF_SERVICE: "自助终端停止服务",
    OVERHEAT: "机柜温度过高",
    PAPER_LOW: "打印纸将用完",
    VANDALISM: "设备被撞击或倾斜",
    STORAGE_DEGRADED: "网关存储故障",
    DEVICE_MISBEHAVING: "设备发送异常",
    GAS_LEAK: "燃气泄漏",
    GAS_VALVE_NOT_CLOSED: "燃气泄漏且阀门未关闭",
    WATER_LEVEL_LOW: "消防水箱水位低",
    WATER_LEVEL_CRITICAL: "消防水箱水位严重不足",
    FREEZE_RISK: "消防水箱有结冰风险",
    STORAGE_DAMAGED_AT_START: "网关存储数据受损",
    CONFIG_REFUSED: "网关配置文件有误",
  },
  en: {
    EMERGENCY_CALL: "Emergency call",
    FALL_DETECTED: "Possible fall",
    TAMPER: "Device cover opened",
    BATTERY_LOW: "Battery low",
    DEVICE_LOST: "Device not heard from",
    DOOR_HELD_OPEN: "Door left open",
    WELFARE_CHECK: "No activity",
    FIRE_ALARM: "Fire alarm",
    HYDRANT_PRESSURE_LOW: "Hydrant pressure low",
    EXTINGUISHER_MISSING: "Extinguisher missing",
    FAULT: "Device fault",
    POWER_FAIL: "Mains power lost",
    KIOSK_OUT_OF_SERVICE: "Kiosk out of service",
    OVERHEAT: "Cabinet overheating",
    PAPER_LOW: "Paper low",
    VANDALISM: "Device knocked or tilted",
    STORAGE_DEGRADED: "Gateway storage failing",
    DEVICE_MISBEHAVING: "Device sending too fast",
    GAS_LEAK: "Gas leak",
    GAS_VALVE_NOT_CLOSED: "Gas leak, valve not closed",
    WATER_LEVEL_LOW: "Fire-water tank low",
    WATER_LEVEL_CRITICAL: "Fire-water tank critically low",
    FREEZE_RISK: "Fire-water tank may freeze",
    STORAGE_DAMAGED_AT_START: "Gateway storage damaged at start",
    CONFIG_REFUSED: "Gateway site file refused",
  },
};

// The built-in models' commands (docs/topics.md "Device commands"), named for people in a
// command's result: "设备命令 关闭燃气阀 · 1号楼 101室厨房", not `valve_close`.
// The names are the profiles' (devices/*.ts `commands.*.names`), which the gateway's failure messages
// say too: gateway/console/i18n.test.ts holds this table equal to them.
export const COMMAND_NAMES = {
  "zh-CN": {
    locate: "让挂件鸣响（寻找）",
    silence: "消音",
    reset: "复位报警",
    test_on: "进入测试模式",
    test_off: "退出测试模式",
    restart_app: "重启终端程序",
    maintenance_on: "进入维护",
    maintenance_off: "退出维护",
    valve_close: "关闭燃气阀",
    valve_open: "打开燃气阀",
    self_test: "自检",
    set_low: "设置低液位",
    set_high: "设置高液位",
  },
  en: {
    locate: "beep to locate",
    silence: "silence",
    reset: "reset alarms",
    test_on: "test mode on",
    test_off: "test mode off",
    restart_app: "restart the kiosk app",
    maintenance_on: "maintenance on",
    maintenance_off: "maintenance off",
    valve_close: "close the gas valve",
    valve_open: "open the gas valve",
    self_test: "self-test",
    set_low: "set the low level",
    set_high: "set the high level",
  },
};

/** A text of STRINGS by its dotted key ("cmdOutcome.replies.busy"), or null when there is none. */
function said(lang, key) {
  const text = key.split(".").reduce((o, k) => (o == null ? o : o[k]), STRINGS[lang] ?? STRINGS.en);
  return typeof text === "string" ? text : null;
}

/** Why a request was refused: the gateway's words (`message`, the site's language) when given, else its error named. */
export function refusalWords(lang, b) {
  if (b.message) return b.message;
  if (b.error) {
    const text = said(lang, `cmdErrors.${b.error}`) ?? said(lang, "cmdErrors.other");
    return b.exception ? `${text}${said(lang, "colon")}${b.exception}` : text;
  }
  return b.reason ?? "";
}

/** Refused by the gateway before anything was sent (docs/topics.md "Device commands"). */
const REFUSED_BEFORE_SENDING = new Set([
  "forbidden",
  "unknown-command",
  "unknown-device",
  "bad-value",
  "no-downlink",
  "too-many-commands",
]);

/**
 * What became of a device command, from one of its results (docs/topics.md "Device commands",
 * "Devices that are away"): [text, class of the results line ("refused": not done)]. Sent, the
 * device's reply, done on the bus, queued for a device away (and until when), delivered late,
 * expired or dropped, refused before sending with the gateway's reason, failed on the way.
 * `fmtTime`: a time as the page shows it (the site's zone).
 */
export function commandOutcome(lang, b, fmtTime) {
  const s = (key) => said(lang, key) ?? key;
  const noted = (text) => (b.message ? `${text}${s("open")}${b.message}${s("close")}` : text);
  if (typeof b.reply === "string") {
    const reply = s("cmdOutcome.reply").replace(
      "{r}",
      said(lang, `cmdOutcome.replies.${b.reply}`) ?? b.reply,
    );
    return b.ok ? [reply, ""] : [noted(reply), "refused"];
  }
  if (b.ok === false) {
    const lost = said(lang, `cmdOutcome.${b.error}`);
    if (lost !== null) return [lost, "refused"];
    const verb = REFUSED_BEFORE_SENDING.has(b.error) ? s("refused") : s("cmdOutcome.failed");
    return [`${verb}${s("open")}${refusalWords(lang, b)}${s("close")}`, "refused"];
  }
  // Queued for a device away (topics 0.13.41, 0.13.43): not done, said so, with when it goes void.
  if (b.queued || b.deviceConnected === false) {
    const until =
      typeof b.expiresAt === "number" ? s("cmdOutcome.queuedUntil").replace("{t}", fmtTime(b.expiresAt)) : "";
    return [noted(`${s("notDelivered")}${until}`), "refused"];
  }
  if (typeof b.waitedMs === "number")
    return [s("cmdOutcome.delivered").replace("{s}", String(Math.round(b.waitedMs / 1000))), ""];
  // An MQTT device's downlink left (`sent`); a Modbus write the device echoed (no `sent`).
  return [b.sent === true ? s("cmdOutcome.sent") : s("cmdOutcome.done"), ""];
}

/** A command's name in `lang`; a YAML profile's own command as it is called. */
export function commandName(lang, command) {
  return (COMMAND_NAMES[lang] ?? COMMAND_NAMES.en)[command] ?? command;
}

// Every reading of the built-in models (devices/*.ts `metrics`), named for people. A key
// `<model>.<field>` names a field whose meaning differs by model (GD-2 `level` is a gas alarm
// level, LV-4 `level` a water level).
export const METRIC_NAMES = {
  "zh-CN": {
    battery: "电量",
    rssi: "信号",
    event: "事件",
    contact: "门",
    tamper: "防拆",
    smoke: "烟雾",
    temperature: "温度",
    humidity: "湿度",
    hydrantPressure: "消火栓水压",
    extinguishersPresent: "灭火器在位",
    extinguisherSlots: "灭火器位数",
    sounder: "声光报警",
    testMode: "测试模式",
    faultCode: "故障代码",
    eventCounter: "事件计数",
    uptime: "运行时长",
    state: "状态",
    paper: "纸张",
    queue: "排队",
    transactionsToday: "今日办理",
    availabilityToday: "今日可用率",
    lel: "燃气浓度",
    "gd2.level": "燃气报警",
    valve: "阀门",
    valveCause: "阀门动作来源",
    mains: "市电",
    fault: "故障",
    reply: "命令回复",
    level: "液位",
    levelSuspect: "液位读数存疑",
    volume: "水量",
    heater: "加热器",
    selfTest: "自检",
    aboveHighSetPoint: "高于高液位设定",
    belowLowSetPoint: "低于低液位设定",
    tankHeight: "水箱高度",
    alarmCounter: "报警计数",
    testing: "测试中",
  },
  en: {
    battery: "Battery",
    rssi: "Signal",
    event: "Event",
    contact: "Door",
    tamper: "Tamper",
    smoke: "Smoke",
    temperature: "Temperature",
    humidity: "Humidity",
    hydrantPressure: "Hydrant pressure",
    extinguishersPresent: "Extinguishers present",
    extinguisherSlots: "Extinguisher slots",
    sounder: "Sounder",
    testMode: "Test mode",
    faultCode: "Fault code",
    eventCounter: "Events",
    uptime: "Uptime",
    state: "State",
    paper: "Paper",
    queue: "Queue",
    transactionsToday: "Transactions today",
    availabilityToday: "Available today",
    lel: "Gas",
    "gd2.level": "Gas alarm",
    valve: "Valve",
    valveCause: "Valve moved by",
    mains: "Mains",
    fault: "Fault",
    reply: "Command reply",
    level: "Level",
    levelSuspect: "Level reading suspect",
    volume: "Volume",
    heater: "Heater",
    selfTest: "Self-test",
    aboveHighSetPoint: "Above high set point",
    belowLowSetPoint: "Below low set point",
    tankHeight: "Tank height",
    alarmCounter: "Alarms",
    testing: "Testing",
  },
};

// Values of enumerations and switches, by field (or `<model>.<field>`). Booleans not listed here
// read 是/否 (yes/no).
const METRIC_VALUES = {
  "zh-CN": {
    contact: { open: "开", closed: "关" },
    tamper: { true: "被拆开", false: "正常" },
    sounder: { true: "开", false: "关" },
    heater: { true: "开", false: "关" },
    mains: { true: "正常", false: "断电" },
    state: {
      off: "关机",
      booting: "启动中",
      "in-service": "服务中",
      "out-of-service": "暂停服务",
      maintenance: "维护中",
    },
    valve: { open: "开", closed: "关", moving: "动作中", fault: "故障" },
    valveCause: { local: "本机", remote: "远程", manual: "手动" },
    "gd2.level": { none: "无", low: "低报", high: "高报" },
    fault: { 0: "无", 1: "传感器寿命到期", 2: "传感器故障", 3: "阀门电机故障", 4: "未装阀门" },
    faultCode: { 0: "无" },
    // The fault code's meaning (datasheets), as the alert names it: a card read "故障代码 3".
    "mfs8.faultCode": {
      0: "无",
      1: "烟感探头脏污",
      2: "温感探头断路",
      3: "压力传感器故障",
      4: "RS-485 干扰",
      5: "内部电池故障",
    },
    "lv4.faultCode": {
      0: "无",
      1: "压力传感器断路",
      2: "压力传感器超量程",
      3: "温度探头故障",
      4: "供电电压过低",
    },
    event: { press: "按键", long_press: "长按", fall: "跌倒", cancel: "取消", low_battery: "电量低" },
  },
  en: {
    contact: { open: "open", closed: "closed" },
    tamper: { true: "opened", false: "intact" },
    sounder: { true: "on", false: "off" },
    heater: { true: "on", false: "off" },
    mains: { true: "on", false: "lost" },
    state: {
      off: "off",
      booting: "starting",
      "in-service": "in service",
      "out-of-service": "out of service",
      maintenance: "maintenance",
    },
    valve: { open: "open", closed: "closed", moving: "moving", fault: "fault" },
    valveCause: { local: "at the device", remote: "remote", manual: "by hand" },
    "gd2.level": { none: "none", low: "low alarm", high: "high alarm" },
    fault: {
      0: "none",
      1: "sensor end of life",
      2: "sensor fault",
      3: "valve motor fault",
      4: "no valve fitted",
    },
    faultCode: { 0: "none" },
    "mfs8.faultCode": {
      0: "none",
      1: "smoke head dirty",
      2: "heat sensor open circuit",
      3: "pressure transducer fault",
      4: "RS-485 noise",
      5: "internal battery fault",
    },
    "lv4.faultCode": {
      0: "none",
      1: "pressure cell open circuit",
      2: "pressure cell over range",
      3: "temperature probe fault",
      4: "supply voltage low",
    },
    event: {
      press: "press",
      long_press: "long press",
      fall: "fall",
      cancel: "cancel",
      low_battery: "battery low",
    },
  },
};

const YES_NO = { "zh-CN": { true: "是", false: "否" }, en: { true: "yes", false: "no" } };
const SUSPECT = { "zh-CN": "读数存疑", en: "reading suspect" };

/** An unknown field (a YAML profile's point): `hydrantPressure2` reads "hydrant pressure 2", not the raw key. */
function readableKey(key) {
  return key
    .replace(/([a-z])([A-Z0-9])/g, "$1 $2")
    .replace(/[_-]+/g, " ")
    .toLowerCase();
}

/** A text of STRINGS with its `{n}` filled in: "第 3 次升级", "Escalation level 3". */
export function textWith(lang, key, n) {
  const text = (STRINGS[lang] ?? STRINGS.en)[key] ?? key;
  return text.replace("{n}", String(n));
}

/**
 * A household as people read it: its configured name, else "住户 hh-1" / "household hh-1", as
 * the gateway's alert messages and results say it (gateway/content/alert-content.ts); never the
 * bare id. `name`: the alert's `householdName` or the site's entry's.
 */
export function householdLabel(lang, id, name) {
  if (name) return name;
  return (STRINGS[lang] ?? STRINGS.en).unnamedHousehold.replace("{id}", String(id ?? ""));
}

/**
 * A household with its resident, as the gateway's messages name them ("1号楼 101室 张阿姨",
 * "1号楼 101室, 张阿姨": householdWith in gateway/content/messages.*.ts): the person to call, not
 * only the door, in a card's heading, the P1 bar and results. `resident`: the alert's
 * `residentName` or the site's entry's.
 */
export function householdWithResident(lang, id, name, resident) {
  const household = householdLabel(lang, id, name);
  if (!resident) return household;
  return lang === "en" ? `${household}, ${resident}` : `${household} ${resident}`;
}

/**
 * A device as people read it: its configured name, else its model as the operators' guide calls
 * it and its id ("燃气报警器 g-1", "gas detector g-1"), as the gateway's messages say it.
 */
export function deviceLabel(lang, id, name, model) {
  if (name) return name;
  const strings = STRINGS[lang] ?? STRINGS.en;
  const noun = strings.models[model];
  if (!noun) return strings.unnamedDevice.replace("{id}", String(id ?? ""));
  // English reads the model as a common noun mid-sentence: "gas detector g-1".
  return `${lang === "en" ? noun.toLowerCase() : noun} ${id}`;
}

/** Event alerts (docs/topics.md: a call or a fall) end their window; they do not "return to normal". */
const EVENT_CODES = new Set(["EMERGENCY_CALL", "FALL_DETECTED"]);

/** The key in `states` of an alert's badge. */
export function stateKey(alert) {
  return alert.state === "cleared-unacknowledged" && EVENT_CODES.has(alert.code)
    ? "window-over-unacknowledged"
    : alert.state;
}

/** The label of a reading: its name in `lang`, for this model where it differs. */
export function metricName(lang, model, key) {
  const names = METRIC_NAMES[lang] ?? METRIC_NAMES.en;
  const known = names[`${model}.${key}`] ?? names[key];
  if (known) return known;
  // A profile's spike flag: `<point>Suspect` (docs/devices.md).
  if (key.endsWith("Suspect") && key.length > 7) {
    const base = key.slice(0, -7);
    return `${names[base] ?? readableKey(base)} ${SUSPECT[lang] ?? SUSPECT.en}`;
  }
  return readableKey(key);
}

/** One reading as people read it: "温度 21.5 °C", "今日可用率 99.5 %", "加热器 开". */
export function metricLabel(lang, model, key, metric) {
  const words = METRIC_VALUES[lang] ?? METRIC_VALUES.en;
  const v = metric?.value;
  const enumWords = words[`${model}.${key}`] ?? words[key];
  let text;
  if (enumWords && v != null && Object.hasOwn(enumWords, String(v))) text = enumWords[String(v)];
  else if (typeof v === "boolean") text = (YES_NO[lang] ?? YES_NO.en)[String(v)];
  else if (metric?.unit === "ratio" && typeof v === "number") text = `${Math.round(v * 1000) / 10} %`;
  else if (typeof v === "number")
    text = `${Math.round(v * 100) / 100}${metric?.unit ? ` ${metric.unit}` : ""}`;
  else text = `${v ?? ""}${metric?.unit ? ` ${metric.unit}` : ""}`;
  return `${metricName(lang, model, key)} ${text}`;
}

// Counters and the pendant's last event: noise on a station's card.
const METRICS_NOT_SHOWN = new Set(["event", "uptime", "eventCounter", "alarmCounter"]);

/** The readings of one telemetry message, as shown on a station's card. */
export function metricsText(lang, model, metrics) {
  return Object.entries(metrics ?? {})
    .filter(([k]) => !METRICS_NOT_SHOWN.has(k))
    .map(([k, m]) => metricLabel(lang, model, k, m))
    .join(" · ");
}
