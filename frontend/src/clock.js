// The 1/3/15 clock of one incident as a screen shows it: per milestone, when it is due, when
// it warns, and whether it is running, warned, breached or done (and how late).
export const MILESTONES = ["respond", "turn_out", "arrive", "handle"];
export const LABELS = { respond: "响应 1′", turn_out: "出勤 3′", arrive: "到达", handle: "处置 15′" };

export function policyFor(policies, incident) {
  const key = `${incident.category}/${incident.priority}`;
  return policies.by_category_priority[key] || policies.by_category[incident.category] || policies.default;
}

export function clocks(incident, policy, now) {
  return MILESTONES.map((milestone) => {
    const limit = policy.deadlines_s[milestone];
    const reached = (incident.milestones || []).find((m) => m.milestone === milestone);
    const due = limit == null ? null : incident.reported_at + limit;
    const warn = limit == null ? null : incident.reported_at + limit * policy.warn_at_fraction;
    let state = "running";
    if (reached) state = reached.late_by_s > 0 ? "late-done" : "done";
    else if (due != null && now >= due) state = "breached";
    else if (warn != null && now >= warn) state = "warning";
    else if (due == null) state = "untimed";
    return { milestone, due, warn, reached, state, left: due == null ? null : due - now };
  });
}

export function worst(states) {
  for (const state of ["breached", "warning", "running"]) {
    if (states.some((s) => s.state === state)) return state;
  }
  return "done";
}

export function nextDeadline(incident, policy, now) {
  const open = clocks(incident, policy, now).filter((c) => !c.reached && c.due != null);
  return open.length ? Math.min(...open.map((c) => c.due)) : Infinity;
}

export function countdown(seconds) {
  const sign = seconds < 0 ? "-" : "";
  const s = Math.abs(Math.round(seconds));
  return `${sign}${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

const ZONE = "Asia/Shanghai";
export function localTime(epoch) {
  return new Date(epoch * 1000).toLocaleTimeString("zh-CN", { timeZone: ZONE, hour12: false });
}
