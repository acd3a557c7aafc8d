// The login page: account and password, then back to the page that sent us here.
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

// Only a path on this site: never an address elsewhere (an open redirect).
function nextPage(role) {
  const next = params.get("next") || "";
  if (next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/login")) return next;
  return role === "officer" ? "/officer" : "/";
}

if (params.get("denied")) $("message").textContent = "此账号无权使用该页面 This account may not use that page.";

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("message").textContent = "";
  const response = await fetch("/api/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: $("name").value, password: $("password").value }),
  });
  if (response.ok) {
    const account = await response.json();
    location.assign(nextPage(account.role));
    return;
  }
  let detail = "登录失败 Login failed";
  try { detail = (await response.json()).detail || detail; } catch { /* keep the default */ }
  $("message").textContent = response.status === 429 ? `账号已锁定 Locked: ${detail}` : `账号或密码错误 ${detail}`;
  $("password").value = "";
  $("password").focus();
});
