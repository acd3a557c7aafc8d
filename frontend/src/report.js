// The citizens' report page (随手拍, phone-sized, no account): a photo, a category, what is
// wrong, a phone number and, if the phone allows, its position. The report is kept in
// IndexedDB while it is written, photo included, and leaves when the phone is online: one
// made without signal is sent by itself once the signal is back, even after the page was
// closed and opened again. Without a position from the phone, the server takes the photo's.
const $ = (id) => document.getElementById(id);
const DATABASE = "yiwang-report";
const DRAFTS = "drafts";
const DRAFT = "current";
const CATEGORIES = "yiwang.report.categories";
const CONTACT = "yiwang.report.contact";
const RETRY_MS = 30_000;

// What the page is doing, for the person (#status) and for tests.
const state = { status: "editing", incident: null, detail: "", sending: false };
window.__report = state;

// --- the draft, in IndexedDB (a photo is a Blob, which localStorage cannot hold) -----------

function database() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(DRAFTS);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function drafts(mode, act) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const transaction = db.transaction(DRAFTS, mode);
    const request = act(transaction.objectStore(DRAFTS));
    transaction.oncomplete = () => { db.close(); resolve(request.result); };
    transaction.onerror = transaction.onabort = () => { db.close(); reject(transaction.error); };
  });
}

const loadDraft = () => drafts("readonly", (store) => store.get(DRAFT));
const saveDraft = (draft) => drafts("readwrite", (store) => store.put(draft, DRAFT));
const dropDraft = () => drafts("readwrite", (store) => store.delete(DRAFT));

// The draft being written: the form's fields, the photo chosen and the position found.
let draft = { photo: null, photoName: "", category: "", description: "", contact: "", lon: null, lat: null, queued: false };

function fromForm() {
  Object.assign(draft, {
    category: $("category").value,
    description: $("description").value,
    contact: $("contact").value.trim(),
  });
}

function toForm() {
  $("category").value = draft.category;
  $("description").value = draft.description;
  $("contact").value = draft.contact || localStorage.getItem(CONTACT) || "";
  if (!draft.photo) $("photo").value = ""; // a sent report's photo is not the next one's
  showPhoto();
  showPlace();
  for (const field of $("report").elements) field.disabled = draft.queued;
}

let previewUrl = null;
function showPhoto() {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = draft.photo ? URL.createObjectURL(draft.photo) : null;
  const preview = $("preview");
  preview.hidden = !previewUrl;
  if (previewUrl) preview.src = previewUrl;
  $("photo-name").textContent = draft.photo ? `${draft.photoName} · ${(draft.photo.size / 1048576).toFixed(1)} MB` : "";
}

function showPlace() {
  $("place").textContent = draft.lon == null
    ? "未定位：将使用照片中的位置信息"
    : `已定位 ${draft.lon.toFixed(5)}, ${draft.lat.toFixed(5)}`;
}

function show(status, text) {
  Object.assign(state, { status, detail: text });
  $("status").textContent = text;
  $("status").className = status;
}

// --- sending -------------------------------------------------------------------------------

async function reasonOf(response) {
  try {
    const detail = (await response.json()).detail;
    return typeof detail === "string" ? detail : JSON.stringify(detail);
  } catch {
    return `HTTP ${response.status}`;
  }
}

function formOf(report) {
  const form = new FormData();
  form.append("photo", report.photo, report.photoName || "photo.jpg");
  form.append("category", report.category);
  form.append("description", report.description);
  form.append("contact", report.contact);
  if (report.lon != null) {
    // The browser's position is WGS-84 (the Geolocation API's datum).
    form.append("lon", String(report.lon));
    form.append("lat", String(report.lat));
    form.append("crs", "wgs84");
  }
  return form;
}

async function send() {
  if (state.sending || !draft.queued) return;
  if (!navigator.onLine) {
    show("queued", "当前离线：举报已保存在本机，联网后自动发送");
    return;
  }
  state.sending = true;
  show("sending", "正在发送…");
  try {
    let response;
    try {
      response = await fetch("/api/reports", { method: "POST", body: formOf(draft), credentials: "omit" });
    } catch {
      show("queued", "网络不可用：举报已保存在本机，联网后自动发送");
      return;
    }
    if (response.status === 201) {
      const answer = await response.json();
      localStorage.setItem(CONTACT, draft.contact);
      await dropDraft();
      draft = { ...draft, photo: null, photoName: "", description: "", lon: null, lat: null, queued: false };
      state.incident = answer.incident;
      toForm();
      show("sent", `已提交，受理编号 ${answer.incident}。感谢您的举报！`);
      return;
    }
    const detail = await reasonOf(response);
    if (response.status === 429 || response.status >= 500) {
      // Not refused for what it is: it leaves again later, by itself.
      const wait = Number(response.headers.get("retry-after")) || RETRY_MS / 1000;
      setTimeout(send, Math.min(wait, 3600) * 1000);
      show("queued", `暂未发送（${detail}），稍后自动重发`);
      return;
    }
    // Refused for what it holds: back to the person to correct it.
    draft.queued = false;
    await saveDraft(draft);
    toForm();
    show("refused", `未能提交：${detail}`);
  } finally {
    state.sending = false;
  }
}

function missing() {
  if (!draft.photo) return "请先拍摄或选择一张照片";
  if (!draft.category) return "请选择类别";
  if (!/^[+\d][\d\s\-()]{4,}$/.test(draft.contact)) return "请填写联系电话";
  return "";
}

async function submit(event) {
  event.preventDefault();
  fromForm();
  const problem = missing();
  if (problem) {
    show("editing", problem);
    return;
  }
  draft.queued = true;
  await saveDraft(draft);
  toForm();
  await send();
}

// --- the form ------------------------------------------------------------------------------

async function loadCategories() {
  let categories = JSON.parse(localStorage.getItem(CATEGORIES) || "null");
  try {
    const response = await fetch("/api/reports/categories", { credentials: "omit" });
    if (response.ok) {
      categories = (await response.json()).categories;
      localStorage.setItem(CATEGORIES, JSON.stringify(categories));
    }
  } catch { /* offline: the list kept from the last visit */ }
  const select = $("category");
  select.replaceChildren(new Option("请选择类别", ""));
  for (const [key, label] of Object.entries(categories || {})) select.append(new Option(label, key));
}

function locate() {
  if (!navigator.geolocation) {
    $("place").textContent = "此浏览器不能定位：将使用照片中的位置信息";
    return;
  }
  $("place").textContent = "正在定位…";
  navigator.geolocation.getCurrentPosition(
    async (position) => {
      Object.assign(draft, { lon: position.coords.longitude, lat: position.coords.latitude });
      showPlace();
      await saveDraft(draft);
    },
    () => { $("place").textContent = "未能定位：将使用照片中的位置信息"; },
    { enableHighAccuracy: true, timeout: 15_000, maximumAge: 60_000 },
  );
}

function updateNetwork() {
  $("network").textContent = navigator.onLine ? "" : "· 离线";
}

async function start() {
  await loadCategories();
  draft = { ...draft, ...((await loadDraft()) || {}) };
  toForm();
  updateNetwork();
  $("photo").addEventListener("change", async (event) => {
    const [file] = event.target.files;
    if (!file) return;
    Object.assign(draft, { photo: file, photoName: file.name });
    showPhoto();
    await saveDraft(draft);
  });
  $("report").addEventListener("input", async (event) => {
    if (event.target.id === "photo") return;
    fromForm();
    await saveDraft(draft);
  });
  $("locate").addEventListener("click", locate);
  $("report").addEventListener("submit", submit);
  window.addEventListener("online", () => { updateNetwork(); send(); });
  window.addEventListener("offline", updateNetwork);
  setInterval(send, RETRY_MS);
  if (draft.queued) await send();
  else show("editing", "");
  state.ready = true;
}

start().catch((error) => show("error", `页面出错：${error.message}`));
