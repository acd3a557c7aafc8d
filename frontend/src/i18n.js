// The console's words, in Chinese (zh-CN, the default) and English, from one catalogue; the
// choice is kept in localStorage. Raw keys from the server (phases, statuses, categories,
// sources, alert kinds) are never shown: `name(group, key)` falls back to the Chinese entry,
// then to the category catalogue the server sends, and only then to the key itself.
//
//   t(key, vars)          a message, `{name}` filled from vars
//   name(group, key)      a translated value of a group ("phase", "status", "source", …)
//   setLanguage(lang)     "zh" | "en"; persisted
//   useCategories(list)   the server's catalogue [{key, zh, en}] for name("category", key)
//   when(epoch)           local time (Asia/Shanghai), with the date when not today
//   refusal(error)        a refused action the server coded, in the user's language
const STORAGE = "yiwang.lang";
export const ZONE = "Asia/Shanghai";

const MESSAGES = {
  zh: {
    refusal_not_in_phase: "事件当前为“{phase}”，不能{event}", refusal_no_order: "事件尚无指令，不能{event}",
    refusal_order_replaced: "指令 {order} 已由 {current} 取代", refusal_not_on_order: "{officer} 不在指令 {order} 中",
    refusal_no_officer: "派单至少需要一名警员", refusal_two_officers: "此类事件须双人执法：请选两名警员",
    refusal_cannot_merge: "不能并入事件 {into}（{phase}）", refusal_crew_refused: "未派单：{officers}",
    title: "一网 指挥中心", queue: "事件队列", detail: "事件详情", alerts: "告警", units: "警员",
    intake: "接警", replay: "回放", leave_replay: "退出回放", live: "实时", open: "在办", feed: "数据流",
    select_incident: "选择一个事件", recommended: "推荐警员", no_officer: "无可用警员", assign: "派单",
    reported: "上报", priority: "优先级", source: "来源", address: "地址", area: "区域", coordinates: "坐标",
    caller: "报警人", description: "描述", team: "责任班组", ticket: "工单号", timeline: "时间线", clocks: "时限",
    on_time: "按时", late: "超时", all: "全部", breached_only: "仅超时", search: "搜索", no_team: "未分组",
    on_duty: "在岗", off_duty: "离岗", last_seen: "最近定位", battery: "电量", current_order: "当前任务",
    speed: "速度", fix_age: "定位于", category: "类别", phase: "阶段", status: "状态",
    reason: "原因", reason_needed: "请填写原因", confirm: "确定", cancel_dialog: "取消", refused: "操作被拒绝",
    sent: "已提交", acknowledge_alert: "确认", acknowledged_by: "已确认：{by} {at}", new_alerts: "新 {n} / 共 {total}",
    submit_incident: "提交事件", location: "位置", pick_on_map: "在地图上点选", lon: "经度", lat: "纬度",
    place_search: "搜索地点或街道", duplicate: "重复工单，已有事件 {id}", created: "已创建事件 {id}",
    caller_name: "报警人姓名", caller_phone: "报警人电话", choose_location: "请先选择位置",
    replay_banner: "回放模式：显示 {at} 的历史情况，不能操作", load: "载入", play: "播放/暂停",
    replay_detail: "回放详情", legend: "图例", layers: "图层", supervision: "监督", language: "English",
    officers_shown: "共 {all} 名，显示前 {n} 名", alarms: "传感器 {sensor} · 报警 {count} 次 · 最新 {value} {unit} {at}",
    cleared: "已解除 {at}", photo: "随手拍照片", photo_place_exif: "照片定位", photo_place_report: "上报位置",
    contact: "联系", min: "{n} 分钟", incidents_layer: "事件", officers_layer: "警员", areas_layer: "区域",
    labels_layer: "标注", trails_layer: "轨迹", route_layer: "路线", minutes_ago: "{n} 分钟前", seconds_ago: "{n} 秒前",
    no_alerts: "暂无告警", none: "—", error: "错误",
  },
  en: {
    refusal_not_in_phase: "the incident is {phase}: it cannot take “{event}”", refusal_no_order: "the incident has no order: “{event}” does not apply",
    refusal_order_replaced: "order {order} was replaced by {current}", refusal_not_on_order: "{officer} is not on order {order}",
    refusal_no_officer: "an order needs at least one officer", refusal_two_officers: "two officers are required (双人执法): choose two",
    refusal_cannot_merge: "cannot merge into incident {into} ({phase})", refusal_crew_refused: "no order issued: {officers}",
    title: "Yiwang command center", queue: "Incidents", detail: "Incident", alerts: "Alerts", units: "Units",
    intake: "New incident", replay: "Replay", leave_replay: "Leave replay", live: "Live", open: "Open", feed: "Feed",
    select_incident: "Select an incident", recommended: "Recommended", no_officer: "No officer available", assign: "Assign",
    reported: "Reported", priority: "Priority", source: "Source", address: "Address", area: "Area", coordinates: "Coordinates",
    caller: "Caller", description: "Description", team: "Team", ticket: "Ticket", timeline: "Timeline", clocks: "Clocks",
    on_time: "on time", late: "late", all: "All", breached_only: "Breached only", search: "Search", no_team: "No team",
    on_duty: "On duty", off_duty: "Off duty", last_seen: "Last fix", battery: "Battery", current_order: "Current order",
    speed: "Speed", fix_age: "Fix", category: "Category", phase: "Phase", status: "Status",
    reason: "Reason", reason_needed: "Give a reason", confirm: "Confirm", cancel_dialog: "Back", refused: "Refused",
    sent: "Sent", acknowledge_alert: "Acknowledge", acknowledged_by: "Acknowledged by {by} {at}", new_alerts: "new {n} / {total}",
    submit_incident: "Create incident", location: "Location", pick_on_map: "Pick on the map", lon: "Lon", lat: "Lat",
    place_search: "Search a place or street", duplicate: "Duplicate ticket: incident {id} exists", created: "Created {id}",
    caller_name: "Caller name", caller_phone: "Caller phone", choose_location: "Choose a location first",
    replay_banner: "Replay: the situation at {at}; no actions", load: "Load", play: "Play/pause",
    replay_detail: "Replayed incident", legend: "Legend", layers: "Layers", supervision: "Supervision", language: "中文",
    officers_shown: "{all} officers, first {n}", alarms: "Sensor {sensor} · {count} alarms · latest {value} {unit} {at}",
    cleared: "cleared {at}", photo: "Citizen's photo", photo_place_exif: "photo location", photo_place_report: "reported location",
    contact: "contact", min: "{n} min", incidents_layer: "Incidents", officers_layer: "Officers", areas_layer: "Areas",
    labels_layer: "Labels", trails_layer: "Trails", route_layer: "Route", minutes_ago: "{n} min ago", seconds_ago: "{n} s ago",
    no_alerts: "No alerts", none: "—", error: "Error",
  },
};

const GROUPS = {
  phase: {
    reported: ["待受理", "reported"], acknowledged: ["已受理", "acknowledged"], dispatched: ["已派单", "dispatched"],
    en_route: ["出警中", "en route"], on_scene: ["到场", "on scene"], resolved: ["已办结", "resolved"],
    closed: ["已结案", "closed"], cancelled: ["已撤销", "cancelled"], merged: ["已合并", "merged"],
  },
  status: {
    available: ["空闲", "available"], ordered: ["已派单", "ordered"], en_route: ["出警中", "en route"],
    on_scene: ["到场", "on scene"], offline: ["离线", "offline"], online: ["在线", "online"], stale: ["信号弱", "stale"],
  },
  source: {
    12345: ["12345热线", "12345 hotline"], 8890: ["8890热线", "8890 hotline"], citizen: ["随手拍", "citizen"],
    patrol: ["巡查发现", "patrol"], iot: ["物联感知", "IoT"], sos: ["一键求助", "SOS"],
  },
  action: {
    acknowledge: ["受理", "Acknowledge"], assign: ["派单", "Assign"], reassign: ["改派", "Reassign"],
    resolve: ["办结", "Resolve"], close: ["结案", "Close"], cancel: ["撤销", "Cancel"], merge: ["合并", "Merge"],
  },
  milestone: {
    respond: ["响应 1′", "respond 1′"], turn_out: ["出勤 3′", "turn out 3′"], arrive: ["到达", "arrive"],
    handle: ["处置 15′", "handle 15′"],
  },
  alert: {
    warning: ["时限预警", "deadline warning"], escalation: ["升级", "escalation"], redispatch: ["改派", "re-dispatch"],
    partner_missing: ["双人执法缺员", "partner missing"], patrol_shortfall: ["巡查不足", "patrol shortfall"],
    sensor_silent: ["传感器静默", "sensor silent"], sos: ["一键求助", "SOS"], new_incident: ["新事件", "new incident"],
    refused: ["操作被拒绝", "refused"],
  },
  // What a refused action tried (the event the server names) and why an officer cannot take an order.
  event: {
    IncidentAcknowledged: ["受理", "acknowledge"], OrderIssued: ["派单", "assign"], ReassignRequested: ["改派", "reassign"],
    IncidentCancelled: ["撤销", "cancel"], IncidentResolved: ["办结", "resolve"], IncidentClosed: ["结案", "close"],
    DuplicateMerged: ["合并", "merge"], OrderAccepted: ["接受指令", "accept the order"], OrderRejected: ["拒绝指令", "reject the order"],
    OfficerDeparted: ["出发", "depart"], OfficerArrived: ["到场", "arrive"], OfficerWentOffline: ["离线", "go offline"],
    SensorAlarmed: ["传感器告警", "sensor alarm"], SensorCleared: ["告警解除", "alarm cleared"],
  },
  why: {
    named_twice: ["被重复选择", "is named twice"], not_on_roster: ["不在花名册中", "is not on the roster"],
    off_duty: ["不在岗", "is off duty"], no_device: ["没有上报过定位的设备", "has no device that has reported"],
    offline: ["离线", "is offline"], stale: ["定位已久未更新", "has not been heard from lately"],
  },
  feed: { connecting: ["连接中", "connecting"], live: ["实时", "live"], reconnecting: ["重连中", "reconnecting"] },
  crs: { wgs84: ["WGS-84 (GPS)", "WGS-84 (GPS)"], gcj02: ["GCJ-02 (高德/腾讯)", "GCJ-02 (Amap)"] },
};

let language = (typeof localStorage !== "undefined" && localStorage.getItem(STORAGE)) || "zh";
let categories = new Map();

export const currentLanguage = () => language;

export function setLanguage(lang) {
  language = lang === "en" ? "en" : "zh";
  localStorage.setItem(STORAGE, language);
  document.documentElement.lang = language === "en" ? "en" : "zh-CN";
}

export function t(key, vars = {}) {
  const text = MESSAGES[language][key] ?? MESSAGES.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
}

export function useCategories(list) {
  categories = new Map(list.map((c) => [c.key, c]));
}

export function name(group, key) {
  if (key == null || key === "") return t("none");
  if (group === "category") {
    const entry = categories.get(key);
    if (entry) return (language === "en" ? entry.en : entry.zh) || entry.zh || key;
    return key;
  }
  const pair = GROUPS[group]?.[key];
  return pair ? pair[language === "en" ? 1 : 0] : String(key);
}

export const names = (group) => Object.keys(GROUPS[group]);

const dayOf = (epoch) => new Date(epoch * 1000).toLocaleDateString("sv-SE", { timeZone: ZONE });

// `now` is the screen's clock (the center's time, or the replayed moment).
export function when(epoch, now = Date.now() / 1000) {
  if (epoch == null) return t("none");
  const time = new Date(epoch * 1000).toLocaleTimeString("zh-CN", { timeZone: ZONE, hour12: false });
  return dayOf(epoch) === dayOf(now) ? time : `${dayOf(epoch)} ${time}`;
}

export function ago(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return t("none");
  return seconds < 120 ? t("seconds_ago", { n: Math.max(0, Math.round(seconds)) }) : t("minutes_ago", { n: Math.round(seconds / 60) });
}

// A refused action the server coded (`code` and `params` beside its English sentence) in the
// user's language; null for a refusal it did not code, which is shown as the server says it.
export function refusal({ code, params = {} }) {
  if (!code || MESSAGES.zh[`refusal_${code}`] === undefined) return null;
  const vars = { ...params };
  if (params.phase) vars.phase = name("phase", params.phase);
  if (params.event) vars.event = name("event", params.event);
  if (params.officers) vars.officers = params.officers.map((o) => `${o.officer} ${name("why", o.why)}`).join(language === "en" ? "; " : "；");
  return t(`refusal_${code}`, vars);
}
