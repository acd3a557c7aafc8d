// How the officer page writes distances, travel times and order states, in Chinese.
export function distance(metres) {
  if (metres == null) return "—";
  return metres < 1000 ? `${Math.round(metres)} 米` : `${(metres / 1000).toFixed(1)} 公里`;
}

export function duration(seconds) {
  if (seconds == null) return "—";
  const minutes = Math.max(1, Math.round(seconds / 60));
  return minutes < 60 ? `约 ${minutes} 分钟` : `约 ${Math.floor(minutes / 60)} 小时 ${minutes % 60} 分`;
}

export const PHASES = {
  reported: "已报", acknowledged: "已受理", dispatched: "已派单", en_route: "在途",
  on_scene: "到场", resolved: "已处置", closed: "已结案", cancelled: "已撤销", merged: "已合并",
};

// The answers an officer gives (the `status` of POST /api/orders/{id}/ack).
export const ANSWERS = { accepted: "接受", rejected: "拒绝", enroute: "出发", arrived: "到达", done: "完成" };
