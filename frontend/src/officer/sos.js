// The SOS button: pressed, then confirmed (a pocket press must not raise an alarm), it raises
// the alarm a device's SOS raises, with the phone's position when it gives one quickly.
//
//   <Sos />
import { useState } from "preact/hooks";
import { api } from "../session.js";
import { html } from "./html.js";
import { refusalText } from "./actions.js";

const POSITION_WAIT_MS = 4000;

function phonePosition() {
  if (!navigator.geolocation) return Promise.resolve({});
  return new Promise((resolve) => {
    navigator.geolocation.getCurrentPosition(
      ({ coords }) => resolve({ lon: coords.longitude, lat: coords.latitude, acc: coords.accuracy }),
      () => resolve({}), // refused or unknown: the center uses the officer's last fix
      { timeout: POSITION_WAIT_MS, maximumAge: 30_000, enableHighAccuracy: true },
    );
  });
}

export function Sos() {
  const [stage, setStage] = useState("idle"); // idle | confirm | sending
  const [result, setResult] = useState(null);

  const raise = async () => {
    setStage("sending");
    try {
      const reply = await api("/api/sos", await phonePosition());
      setResult({ ok: true, text: `求救已发出（${reply.incident}），指挥中心已收到` });
    } catch (error) {
      setResult({ ok: false, text: refusalText(error) });
    }
    setStage("idle");
  };

  return html`<section class="card sos">
    ${stage === "idle" && html`<button id="sos" class="sos-button" onClick=${() => { setResult(null); setStage("confirm"); }}>SOS 紧急求救</button>`}
    ${stage === "confirm" && html`<p class="confirm">确认发出紧急求救？</p>
      <button id="sos-confirm" class="sos-button" onClick=${raise}>确认求救</button>
      <button id="sos-cancel" class="plain" onClick=${() => setStage("idle")}>取消</button>`}
    ${stage === "sending" && html`<p class="hint">正在发送…</p>`}
    ${result && html`<p id="sos-result" role="alert" class=${result.ok ? "ok" : "refused"}>${result.text}</p>`}
  </section>`;
}
