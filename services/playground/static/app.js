// Linju playground chat page: vanilla JS, no build step. Talks to /playground/api/*.
"use strict";

const I18N = {
  zh: {
    title: "邻聚 · 本地体验", subtitle: "不需要 Telegram，直接和机器人聊天", people: "选择身份", newPerson: "新建身份",
    name: "名字", namePlaceholder: "例如：王阿姨", role: "身份", language: "语言", create: "创建",
    resident: "居民", volunteer: "志愿者", staff: "工作人员", chats: "对话", privateChat: "与 邻聚 私聊",
    typeHere: "输入消息…", send: "发送", edited: "已编辑", photo: "照片", sendLocation: "发送位置",
    start: "开始对话 /start", back: "返回", noPeople: "还没有人，先新建一个吧", pickPerson: "先选择或新建一个身份",
    ok: "好的", bot: "邻聚", members: "位成员", typing: "正在输入…", failed: "出错了：", groupChat: "群聊",
    privateSub: "机器人私聊", locationLabel: "位置", you: "我",
  },
  en: {
    title: "Linju · Playground", subtitle: "Chat with the bot without Telegram", people: "Who are you?",
    newPerson: "New person", name: "Name", namePlaceholder: "e.g. Mrs Wang", role: "Role", language: "Language",
    create: "Create", resident: "Resident", volunteer: "Volunteer", staff: "Staff", chats: "Chats",
    privateChat: "Chat with Linju", typeHere: "Type a message…", send: "Send", edited: "edited", photo: "Photo",
    sendLocation: "Send location", start: "Start /start", back: "Back", noPeople: "Nobody yet: create someone",
    pickPerson: "Pick or create a person first", ok: "OK", bot: "Linju", members: "members", typing: "typing…",
    failed: "Something went wrong: ", groupChat: "Group", privateSub: "Private chat with the bot",
    locationLabel: "Location", you: "me",
  },
};
const DEMO_LOCATION = { latitude: 31.2304, longitude: 121.4737 };

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
};

const S = {
  lang: localStorage.getItem("linju.pg.lang") || "zh",
  users: [], me: null, chats: [], chat: null,
  messages: new Map(), seq: 0, keyboard: null, action: null, poll: null,
};
const t = (key) => (I18N[S.lang] || I18N.zh)[key] || key;

async function api(path, body) {
  const options = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || data.description || response.status);
  return data;
}

function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 2600);
}
function alertBox(text) { $("modal-text").textContent = text; $("modal").hidden = false; }
const fail = (error) => toast(t("failed") + error.message);

// ---- language ---------------------------------------------------------------------------------------------
function applyLanguage() {
  document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
  for (const node of document.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
  for (const node of document.querySelectorAll("[data-i18n-label]")) node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  $("lang").textContent = S.lang === "zh" ? "EN" : "中文";
  renderPeople(); renderChats(); renderChatHead(); renderMessages();
}

// ---- people -------------------------------------------------------------------------------------------------
const initial = (name) => (name || "?").trim().slice(0, 1).toUpperCase();
const roleBadge = (role) => role ? el("span", { class: `badge ${role}` }, t(role)) : null;

async function loadPeople() {
  S.users = await api("/playground/api/users");
  renderPeople();
  if (S.users.length === 0) $("create-box").open = true;
  const saved = Number(localStorage.getItem("linju.pg.me"));
  if (!S.me && saved && S.users.some((u) => u.id === saved)) await selectPerson(saved);
}

function renderPeople() {
  const list = $("people");
  list.replaceChildren(...S.users.map((user) => el("li", {
    class: S.me && S.me.id === user.id ? "person active" : "person", dataset: { id: user.id },
    onclick: () => selectPerson(user.id).catch(fail),
  }, el("span", { class: "avatar" }, initial(user.first_name)), el("span", { class: "name" }, user.first_name),
  roleBadge(user.role))));
  $("no-people").hidden = S.users.length > 0;
}

async function createPerson(event) {
  event.preventDefault();
  const name = $("new-name").value.trim();
  if (!name) return;
  const id = 100000000 + Math.floor(Math.random() * 800000000);
  const user = await api("/playground/api/users", { id, first_name: name, role: $("new-role").value,
    language_code: $("new-language").value });
  $("new-name").value = "";
  $("create-box").open = false;
  S.users.push(user);
  await selectPerson(user.id);
}

async function selectPerson(id) {
  S.me = S.users.find((u) => u.id === id) || null;
  localStorage.setItem("linju.pg.me", String(id));
  renderPeople();
  await loadChats();
  await openChat(id);
}

// ---- chats --------------------------------------------------------------------------------------------------
async function loadChats() {
  if (!S.me) return;
  S.chats = await api(`/playground/api/users/${S.me.id}/chats`);
  renderChats();
}

const chatTitle = (chat) => chat.type === "private" ? t("privateChat") : chat.title;

function renderChats() {
  $("chats-card").hidden = !S.me;
  $("chats").replaceChildren(...S.chats.map((chat) => el("li", {
    class: S.chat && S.chat.id === chat.id ? "chat-item active" : "chat-item", dataset: { id: chat.id },
    onclick: () => openChat(chat.id).catch(fail),
  }, el("span", { class: chat.type === "private" ? "avatar bot" : "avatar group" },
    chat.type === "private" ? "邻" : initial(chat.title)), el("span", { class: "name" }, chatTitle(chat)))));
}

function renderChatHead() {
  if (!S.chat) return;
  const group = S.chat.type !== "private";
  $("chat-avatar").className = group ? "avatar group" : "avatar bot";
  $("chat-avatar").textContent = group ? initial(S.chat.title) : "邻";
  $("chat-title").textContent = chatTitle(S.chat);
  $("chat-sub").textContent = group ? `${t("groupChat")} · ${S.chat.members.length} ${t("members")}` : t("privateSub");
}

async function openChat(chatId) {
  const chat = S.chats.find((c) => c.id === chatId);
  if (!chat) return;
  if (S.poll) S.poll.abort();
  S.chat = chat; S.messages = new Map(); S.seq = 0; S.keyboard = null; S.action = null;
  $("placeholder").hidden = true;
  $("chat-inner").hidden = false;
  document.body.dataset.view = "chat";
  renderChats(); renderChatHead(); renderMessages();
  poll(chat.id);
  $("composer-input").focus();
}

async function poll(chatId) {
  const controller = new AbortController();
  S.poll = controller;
  let wait = 0;
  while (!controller.signal.aborted) {
    try {
      const response = await fetch(`/playground/api/messages?chat_id=${chatId}&after_seq=${S.seq}&wait=${wait}`,
        { signal: controller.signal });
      const body = await response.json();
      if (controller.signal.aborted) return;
      if (!response.ok) throw new Error(body.error || response.status);
      for (const m of body.messages) {
        if (m.deleted) S.messages.delete(m.message_id); else S.messages.set(m.message_id, m);
      }
      S.seq = Math.max(S.seq, body.seq);
      S.keyboard = body.keyboard;
      S.action = body.chat_action;
      renderMessages();
      wait = 25;
    } catch (error) {
      if (controller.signal.aborted) return;
      await new Promise((resolve) => setTimeout(resolve, 1500));
    }
  }
}

// ---- messages -----------------------------------------------------------------------------------------------
const ENTITY_TAGS = { bold: "b", italic: "i", underline: "u", strikethrough: "s", code: "code", pre: "pre",
  text_link: "a", url: "a", spoiler: "span", blockquote: "blockquote" };

function formatted(text, entities) {
  // Offsets are UTF-16 code units, exactly like JS string indices. Nested entities are handled by recursion.
  const spans = (entities || []).filter((e) => ENTITY_TAGS[e.type]).sort((a, b) => a.offset - b.offset || b.length - a.length);
  const build = (start, end, list) => {
    const out = [];
    let at = start;
    for (let i = 0; i < list.length; i++) {
      const entity = list[i];
      if (entity.offset < at) continue;
      const stop = Math.min(entity.offset + entity.length, end);
      if (entity.offset > at) out.push(document.createTextNode(text.slice(at, entity.offset)));
      const inner = list.slice(i + 1).filter((e) => e.offset >= entity.offset && e.offset + e.length <= stop);
      const node = el(ENTITY_TAGS[entity.type]);
      if (entity.type === "text_link" || entity.type === "url") {
        node.href = entity.url || text.slice(entity.offset, stop);
        node.target = "_blank"; node.rel = "noopener";
      }
      if (entity.type === "spoiler") { node.className = "spoiler"; node.onclick = () => node.classList.add("shown"); }
      node.append(...build(entity.offset, stop, inner));
      out.push(node);
      at = stop;
    }
    if (at < end) out.push(document.createTextNode(text.slice(at, end)));
    return out;
  };
  return build(0, text.length, spans);
}

function renderMessage(m) {
  const mine = S.me && !m.from_bot && m.from.id === S.me.id;
  const group = S.chat.type !== "private";
  const bubble = el("div", { class: "bubble" });
  if (m.photo_url) bubble.append(el("img", { src: m.photo_url, alt: t("photo"), loading: "lazy" }));
  if (m.location) {
    bubble.append(el("span", { class: "location" },
      `📍 ${t("locationLabel")} ${m.location.latitude.toFixed(4)}, ${m.location.longitude.toFixed(4)}`));
  }
  if (m.text) bubble.append(el("span", { class: "text" }, ...formatted(m.text, m.entities)));
  const meta = el("div", { class: "meta" }, (m.edited ? `${t("edited")} · ` : "") +
    new Date(m.date * 1000).toLocaleTimeString(S.lang === "zh" ? "zh-CN" : "en", { hour: "2-digit", minute: "2-digit" }));
  const sender = m.from_bot ? t("bot") : m.from.first_name;
  const item = el("li", {
    class: `msg ${m.from_bot ? "bot" : mine ? "me" : "other"}${m.edited ? " edited" : ""}`,
    dataset: { id: m.message_id },
  }, (group && !mine) || m.from_bot ? el("div", { class: "sender" }, sender) : null, bubble, meta);
  if (m.buttons && m.buttons.length) {
    item.append(el("div", { class: "buttons" }, ...m.buttons.map((row) => el("div", { class: "row" },
      ...row.map((button) => button.url
        ? el("a", { class: "inline-btn", href: button.url, target: "_blank", rel: "noopener" }, button.text)
        : el("button", { class: "inline-btn", type: "button", dataset: { data: button.callback_data || "" },
          onclick: (event) => press(m, button, event.currentTarget) }, button.text))))));
  }
  return item;
}

function renderMessages() {
  if (!S.chat) return;
  const list = $("messages");
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const items = [...S.messages.values()].sort((a, b) => a.message_id - b.message_id).map(renderMessage);
  if (S.action === "typing") items.push(el("li", { class: "typing" }, `${t("bot")} ${t("typing")}`));
  list.replaceChildren(...items);
  if (nearBottom || items.length < 3) list.scrollTop = list.scrollHeight;
  $("starter").hidden = !(S.chat.type === "private" && S.messages.size === 0);
  renderKeyboard();
}

function renderKeyboard() {
  const box = $("reply-keyboard");
  const keyboard = S.keyboard;
  box.hidden = !keyboard;
  if (!keyboard) { box.replaceChildren(); return; }
  box.replaceChildren(...keyboard.rows.map((row) => el("div", { class: "row" }, ...row.map((button) => el("button", {
    type: "button", class: "reply-btn",
    onclick: () => (button.request_location ? send({ location: DEMO_LOCATION }) : send({ text: button.text })).catch(fail),
  }, button.request_location ? `📍 ${button.text}` : button.text)))));
  if (keyboard.placeholder) $("composer-input").placeholder = keyboard.placeholder;
}

// ---- actions ------------------------------------------------------------------------------------------------
async function send(content) {
  if (!S.me || !S.chat) return;
  await api("/playground/api/send", { user_id: S.me.id, chat_id: S.chat.id, ...content });
}

async function press(message, button, node) {
  node.classList.add("busy");
  try {
    const { callback_query_id: id } = await api("/playground/api/press", { user_id: S.me.id, chat_id: S.chat.id,
      message_id: message.message_id, callback_data: button.callback_data });
    const answer = await api(`/playground/api/callbacks/${id}?wait=10`);
    if (answer.text) (answer.show_alert ? alertBox : toast)(answer.text);
  } catch (error) {
    fail(error);
  } finally {
    node.classList.remove("busy");
  }
}

function readPhoto(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

function wire() {
  $("lang").onclick = () => {
    S.lang = S.lang === "zh" ? "en" : "zh";
    localStorage.setItem("linju.pg.lang", S.lang);
    applyLanguage();
  };
  $("back").onclick = () => { document.body.dataset.view = "home"; loadChats().catch(fail); };
  $("create-form").onsubmit = (event) => createPerson(event).catch(fail);
  $("composer").onsubmit = (event) => {
    event.preventDefault();
    const input = $("composer-input");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send({ text }).catch((error) => { input.value = text; fail(error); });
  };
  $("start-button").onclick = () => send({ text: "/start" }).catch(fail);
  $("location-button").onclick = () => send({ location: DEMO_LOCATION }).catch(fail);
  $("photo-input").onchange = async (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    const caption = $("composer-input").value.trim();
    $("composer-input").value = "";
    await send({ photo: await readPhoto(file), text: caption || undefined }).catch(fail);
  };
  $("modal-ok").onclick = () => { $("modal").hidden = true; };
}

wire();
applyLanguage();
loadPeople().catch(fail);
