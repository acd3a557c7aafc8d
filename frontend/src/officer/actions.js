// The answers to the order the server says the timeline takes now (`answers` of
// GET /api/orders/mine), and what became of the last one: taken, or refused and why.
// A rejection asks for its reason first.
//
//   <Actions order=… answer=(status, reason) => Promise />
import { useState } from "preact/hooks";
import { ApiError } from "../session.js";
import { html } from "./html.js";
import { ANSWERS } from "./format.js";
import { refusal } from "../i18n.js";

export function refusalText(error) {
  if (!(error instanceof ApiError)) return `未能提交：${String(error.message || error)}`;
  if (error.status === 409) return `操作被拒绝：${refusal(error) ?? error.message}`;
  if (error.status === 404) return `指令已撤回或已更换：${error.message}`;
  if (error.status === 403) return `无权操作：${error.message}`;
  return `未受理（${error.status}）：${error.message}`;
}

export function Actions({ order, answer }) {
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState(null); // {ok, text}
  const [rejecting, setRejecting] = useState(false);
  const [reason, setReason] = useState("");

  const send = async (status, why = "") => {
    setBusy(true);
    setResult(null);
    try {
      await answer(status, why);
      setResult({ ok: true, text: `已提交：${ANSWERS[status]}` });
      setRejecting(false);
      setReason("");
    } catch (error) {
      setResult({ ok: false, text: refusalText(error) });
    } finally {
      setBusy(false);
    }
  };
  const answers = order.answers || [];

  return html`<section class="card actions">
    <div class="buttons">${answers.map((status) => html`<button key=${status} data-status=${status}
      class=${`answer ${status}`} disabled=${busy}
      onClick=${() => (status === "rejected" ? setRejecting(true) : send(status))}>${ANSWERS[status] || status}</button>`)}</div>
    ${answers.length === 0 && html`<p class="hint">此阶段无需操作</p>`}
    ${rejecting && html`<div class="reject">
      <label for="reject-reason">拒绝原因</label>
      <textarea id="reject-reason" maxlength="500" value=${reason} onInput=${(e) => setReason(e.currentTarget.value)}></textarea>
      <button id="reject-send" disabled=${busy || !reason.trim()} onClick=${() => send("rejected", reason.trim())}>确认拒绝</button>
      <button id="reject-cancel" class="plain" onClick=${() => setRejecting(false)}>取消</button></div>`}
    ${result && html`<p id="result" role="alert" class=${result.ok ? "ok" : "refused"}>${result.text}</p>`}
  </section>`;
}
