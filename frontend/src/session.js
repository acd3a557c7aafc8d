// The signed-in account: API calls with the session cookie, and the way back to the login
// page when the session has ended (logged out, timed out, account disabled).
export function toLogin() {
  const next = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(next)}`);
}

// A refused call: its status, the server's sentence, and for a refused action the `code` and
// `params` a page words in its user's language (i18n.js `refusal`).
export class ApiError extends Error {
  constructor(status, detail, { code = null, params = {} } = {}) {
    super(detail);
    this.status = status;
    this.code = code;
    this.params = params;
  }
}

export async function api(path, body, method = body === undefined ? "GET" : "POST") {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    toLogin();
    throw new ApiError(401, "请重新登录 log in again");
  }
  if (!response.ok) {
    let detail = await response.text();
    let coded = {};
    try {
      const body = JSON.parse(detail);
      detail = body.detail ?? detail;
      coded = { code: body.code ?? null, params: body.params ?? {} };
    } catch { /* not JSON */ }
    throw new ApiError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail), coded);
  }
  return response.status === 204 ? null : response.json();
}

export const me = () => api("/api/me");

export async function logout() {
  await fetch("/api/session", { method: "DELETE", credentials: "same-origin" });
  location.assign("/login");
}

// Shows who is signed in and a logout button in the element with id `slot`.
export function showAccount(slot, account) {
  const name = document.createElement("span");
  name.id = "account";
  name.textContent = `${account.account} · ${account.role}`;
  const button = document.createElement("button");
  button.id = "logout";
  button.textContent = "退出 Log out";
  button.addEventListener("click", logout);
  slot.replaceChildren(name, " ", button);
}
