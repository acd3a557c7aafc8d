// A new order calls for attention: the order sound (dist/order.wav, made by build.mjs) and a
// vibration. Browsers play sound only after the page was touched once; until then the
// vibration and the card must do.
const sound = new Audio("/static/order.wav");
const seen = new Set();
const SEEN_MAX = 200;

export const attention = { played: 0 };

export function announceNew(orders) {
  const fresh = orders.filter((o) => !seen.has(o.order.id));
  for (const o of fresh) seen.add(o.order.id);
  if (seen.size > SEEN_MAX) seen.clear();
  if (!fresh.length) return;
  attention.played += 1;
  sound.currentTime = 0;
  sound.play().catch(() => { /* not yet allowed by the browser */ });
  if (navigator.vibrate) navigator.vibrate([300, 120, 300]);
}
