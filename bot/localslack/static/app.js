// The Baton demo page: a small Slack workspace drawn from the local Slack's control API.
//
// State comes from GET /_emulator/state?user=ME; every action is POST /_emulator/<action>;
// GET /_emulator/ws streams each change, which triggers a fresh read of the state. The
// emulator turns those actions into signed Events API and interactivity requests to Baton,
// exactly as Slack would. No build step, no libraries, no network beyond this page's server.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  const S = {
    me: null, // the user id we act as
    data: null, // the last /_emulator/state
    view: { kind: "channel", id: null }, // or { kind: "home", tab: "home" | "messages" }
    thread: null, // { channel, ts } shown in the side pane
    typing: new Map(), // key -> { user, channel, thread_ts, until }
    viewErrors: {}, // view_id -> { block_id: message }
    dismissed: new Set(), // modal view ids closed here: hidden at once, before the local Slack says so
    known: null, // keys of every message in the last state (null before the first)
    fresh: new Set(), // messages that arrived with the last state: they flash once
    demo: null, // /_demo/info, when the page runs under `baton demo`
    follow: true, // follow the tour's captions (who, where)
  };

  // -- small helpers ---------------------------------------------------------------------
  const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ESC[c]);
  const unslack = (s) => String(s ?? "").replace(/&(amp|lt|gt);/g, (m) => ({ "&amp;": "&", "&lt;": "<", "&gt;": ">" })[m]);
  const isReply = (m) => m.thread_ts && m.thread_ts !== m.ts;
  const byTs = (a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0);

  function h(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "html") node.innerHTML = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  function toast(text, error = false) {
    const node = h("div", { class: error ? "toast error" : "toast", text });
    $("toasts").append(node);
    setTimeout(() => node.remove(), error ? 6000 : 3500);
  }

  function clock(ts) {
    const date = new Date(parseFloat(ts) * 1000);
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // -- the world ---------------------------------------------------------------------------
  const user = (id) => S.data?.users.find((u) => u.id === id);
  const team = (id) => S.data?.teams.find((t) => t.id === id);
  const channel = (id) => S.data?.channels.find((c) => c.id === id);
  const me = () => user(S.me);
  const hostTeam = () => S.data?.app.team_id;
  const botId = () => S.data?.app.user_id;
  const nameOf = (u) => (u ? (u.is_bot ? u.real_name : u.display_name || u.real_name) || u.name : "someone");
  const isMember = (c, id = S.me) => Boolean(c && c.members.includes(id));
  const visibleChannels = () => S.data.channels.filter((c) => isMember(c) && !c.is_im && !c.is_mpim);
  const myDm = () => S.data.channels.find((c) => c.is_im && c.user === S.me);

  function role(u) {
    if (u.team_id !== hostTeam()) return `customer at ${team(u.team_id)?.name ?? u.team_id}`;
    const where = team(u.team_id)?.name ?? "";
    if (u.is_admin || u.is_owner) return `admin at ${where}`;
    return `${(u.title || "staff").toLowerCase() === "support" ? "agent" : "staff"} at ${where}`;
  }

  const PALETTE = ["#e8912d", "#2eb67d", "#1d9bd1", "#e01e5a", "#7c3085", "#1264a3", "#b35e12", "#007a5a"];
  function avatar(key, label, small = false) {
    let hash = 0;
    for (const c of String(key)) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
    const bot = key === botId();
    const style = `background:${bot ? "var(--baton)" : PALETTE[hash % PALETTE.length]}`;
    const letter = (label || "?").trim().charAt(0).toUpperCase();
    return h("div", { class: small ? "avatar small" : "avatar", style, "aria-hidden": "true", text: letter });
  }

  // Who a message is from, as Slack would show it (relayed messages carry a username and icon).
  function author(m) {
    if (m.username) {
      const icon = Object.values(m.icons || {}).join(" ");
      const found = /avatar\/([UW][A-Z0-9_]+)_\d+/.exec(icon);
      return { name: m.username, key: found ? found[1] : m.username, app: true, team: user(found?.[1])?.team_id };
    }
    if (m.subtype === "tombstone") return { name: "", key: "USLACKBOT", app: false };
    if (m.bot_id) return { name: nameOf(user(botId())), key: botId(), app: true };
    const u = user(m.user);
    return { name: nameOf(u) || m.user, key: m.user, app: false, team: u?.team_id };
  }

  // -- Slack mrkdwn ------------------------------------------------------------------------
  const EMOJI = {
    "+1": "👍", thumbsup: "👍", "-1": "👎", thumbsdown: "👎", white_check_mark: "✅", heavy_check_mark: "✔️",
    raising_hand: "🙋", wave: "👋", hourglass: "⌛", hourglass_flowing_sand: "⏳", robot_face: "🤖",
    rotating_light: "🚨", tada: "🎉", heart: "❤️", eyes: "👀", pray: "🙏", smile: "😄", slightly_smiling_face: "🙂",
    warning: "⚠️", x: "❌", question: "❓", bulb: "💡", memo: "📝", lock: "🔒", key: "🔑", email: "📧",
    bell: "🔔", speech_balloon: "💬", point_right: "👉", star: "⭐", fire: "🔥", rage: "😡", angry: "😠",
    disappointed: "😞", money_with_wings: "💸", credit_card: "💳", calendar: "📅", link: "🔗", clipboard: "📋",
    bar_chart: "📊", chart_with_upwards_trend: "📈", ok_hand: "👌", clap: "👏", thinking_face: "🤔",
    sweat_smile: "😅", gear: "⚙️", books: "📚", mag: "🔍", inbox_tray: "📥", busts_in_silhouette: "👥",
    bust_in_silhouette: "👤", house: "🏠", sparkles: "✨", zap: "⚡", information_source: "ℹ️", no_entry: "⛔",
    handshake: "🤝", construction: "🚧", large_green_circle: "🟢", red_circle: "🔴", arrow_right: "➡️",
  };
  // A few codes at hand; the emulator sends Slack's whole set at start (loadEmoji).
  const emoji = (name) => {
    const [base, tone] = String(name).split("::");
    const char = EMOJI[base];
    return char && tone ? char + (EMOJI[tone] ?? "") : char;
  };
  const emojify = (html) => html.replace(/:([a-z0-9_+-]+(?:::skin-tone-\d)?):/g, (all, name) => emoji(name) ?? all);

  function linkTo(target, label) {
    const href = unslack(target);
    return `<a href="${esc(href)}" target="_blank" rel="noopener noreferrer">${esc(unslack(label || target))}</a>`;
  }

  // One <...> token: a mention, a channel, a special mention or a link.
  function token(inner) {
    const bar = inner.indexOf("|");
    const target = bar < 0 ? inner : inner.slice(0, bar);
    const label = bar < 0 ? "" : inner.slice(bar + 1);
    if (target.startsWith("@")) {
      const id = target.slice(1);
      const cls = id === S.me ? "mention me" : "mention";
      return `<span class="${cls}" data-user="${esc(id)}">@${esc(label || nameOf(user(id)) || id)}</span>`;
    }
    if (target.startsWith("#")) {
      const id = target.slice(1);
      const name = label || channel(id)?.name || id;
      return `<a href="#" class="mention" data-channel="${esc(id)}">#${esc(name)}</a>`;
    }
    if (target.startsWith("!")) {
      const what = target.slice(1).split("^")[0];
      return ["channel", "here", "everyone"].includes(what) ? `<span class="mention">@${what}</span>` : esc(label || what);
    }
    if (/^(https?:|mailto:)/.test(target)) return linkTo(target, label);
    return esc(unslack(`<${inner}>`));
  }

  function inline(text) {
    let s = esc(unslack(text));
    const edge = "(^|[\\s(\\u0002>\"'])";
    const end = "(?=$|[\\s.,;:!?)\\u0001<\"'])";
    for (const [mark, tag] of [["\\*", "strong"], ["_", "em"], ["~", "del"]]) {
      const rule = new RegExp(`${edge}${mark}(?=\\S)([^\\n]*?\\S)${mark}${end}`, "g");
      s = s.replace(rule, `$1<${tag}>$2</${tag}>`);
    }
    return emojify(s);
  }

  function mrkdwn(text) {
    const slots = [];
    const keep = (html) => `\u0001${slots.push(html) - 1}\u0002`;
    let s = String(text ?? "");
    s = s.replace(/```\n?([\s\S]*?)```/g, (_, code) => keep(`<pre><code>${esc(unslack(code))}</code></pre>`));
    s = s.replace(/`([^`\n]+)`/g, (_, code) => keep(`<code>${esc(unslack(code))}</code>`));
    s = s.replace(/<([^<>\n]+)>/g, (_, inner) => keep(token(inner)));
    let out = "";
    let quote = null;
    let afterLine = false;
    const flush = () => {
      if (quote) out += `<blockquote>${quote.join("<br>")}</blockquote>`;
      quote = null;
    };
    for (const line of s.split("\n")) {
      if (line.startsWith(">")) {
        (quote ??= []).push(inline(line.slice(1).replace(/^ /, "")));
        afterLine = false;
        continue;
      }
      flush();
      out += (afterLine ? "<br>" : "") + inline(line);
      afterLine = true;
    }
    flush();
    return out.replace(/\u0001(\d+)\u0002/g, (_, i) => slots[Number(i)]);
  }

  const plain = (t) => emojify(esc(t?.text ?? ""));
  const textObject = (t) => (t?.type === "mrkdwn" ? mrkdwn(t.text) : plain(t));

  // -- Block Kit ---------------------------------------------------------------------------
  // ctx.act(element, value, node) runs an interactive element; ctx.inputs collects modal inputs.
  function element(e, block, ctx) {
    if (e.type === "button") {
      const cls = `btn${e.style ? ` ${e.style}` : ""}`;
      const node = h("button", { class: cls, type: "button", "data-action": e.action_id, html: plain(e.text) });
      node.addEventListener("click", () => ctx.act(e, e.value ?? null, node));
      return node;
    }
    if (e.type === "static_select" || e.type === "overflow") {
      const select = h("select", { "data-action": e.action_id }, h("option", { value: "", html: plain(e.placeholder) || "Choose…" }));
      for (const o of e.options || []) select.append(h("option", { value: o.value, html: plain(o.text) }));
      select.addEventListener("change", () => select.value && ctx.act(e, select.value, select));
      return select;
    }
    if (e.type === "image") return h("span", { class: "block-image", text: `🖼 ${e.alt_text || "image"}` });
    if (e.type === "mrkdwn" || e.type === "plain_text") return h("span", { class: "mrkdwn", html: textObject(e) });
    return h("span", { class: "block-unknown", text: `[${e.type}]` });
  }

  function inputBlock(b, ctx) {
    const e = b.element || {};
    const id = `in-${b.block_id}-${e.action_id}`;
    let field;
    if (e.type === "static_select") {
      field = h("select", { id }, h("option", { value: "", html: plain(e.placeholder) || "Choose…" }));
      for (const o of e.options || []) field.append(h("option", { value: o.value, html: plain(o.text) }));
      const get = () => {
        const chosen = (e.options || []).find((o) => o.value === field.value);
        return chosen ? { type: "static_select", selected_option: chosen } : { type: "static_select", selected_option: null };
      };
      ctx.inputs.push({ block: b.block_id, action: e.action_id, get });
    } else {
      const tag = e.multiline ? "textarea" : "input";
      field = h(tag, { id, rows: e.multiline ? 4 : undefined, placeholder: e.placeholder?.text });
      field.value = e.initial_value || "";
      ctx.inputs.push({ block: b.block_id, action: e.action_id, get: () => field.value });
    }
    const error = ctx.errors?.[b.block_id];
    return h("div", { class: "block block-input" },
      h("label", { for: id, html: plain(b.label) + (b.optional ? " <span class='hint'>(optional)</span>" : "") }),
      field,
      b.hint ? h("div", { class: "hint", html: plain(b.hint) }) : null,
      error ? h("div", { class: "error", text: error }) : null);
  }

  function richText(b) {
    const part = (e) => {
      if (e.type === "text") {
        let html = esc(e.text);
        if (e.style?.code) html = `<code>${html}</code>`;
        if (e.style?.bold) html = `<strong>${html}</strong>`;
        if (e.style?.italic) html = `<em>${html}</em>`;
        if (e.style?.strike) html = `<del>${html}</del>`;
        return html;
      }
      if (e.type === "user") return token(`@${e.user_id}`);
      if (e.type === "channel") return token(`#${e.channel_id}`);
      if (e.type === "link") return linkTo(e.url, e.text);
      if (e.type === "emoji") {
        const name = e.skin_tone ? `${e.name}::skin-tone-${e.skin_tone}` : e.name;
        return emoji(name) ?? `:${esc(name)}:`;
      }
      if (e.type === "broadcast") return token(`!${e.range}`);
      return "";
    };
    const section = (s) => {
      const inner = (s.elements || []).map(part).join("").replace(/\n/g, "<br>");
      if (s.type === "rich_text_quote") return `<blockquote>${inner}</blockquote>`;
      if (s.type === "rich_text_preformatted") return `<pre>${inner}</pre>`;
      if (s.type === "rich_text_list") return `<ul>${(s.elements || []).map((i) => `<li>${section(i)}</li>`).join("")}</ul>`;
      return inner;
    };
    return h("div", { class: "block mrkdwn", html: (b.elements || []).map(section).join("") });
  }

  const BLOCKS = {
    section(b, ctx) {
      const fields = b.fields?.length ? h("div", { class: "fields" }, b.fields.map((f) => h("div", { class: "mrkdwn", html: textObject(f) }))) : null;
      const text = h("div", { class: "mrkdwn" }, b.text ? h("div", { html: textObject(b.text) }) : null, fields);
      return h("div", { class: "block block-section" }, text, b.accessory ? element(b.accessory, b, ctx) : null);
    },
    header: (b) => h("div", { class: "block block-header", html: plain(b.text) }),
    divider: () => h("hr", { class: "block-divider" }),
    context: (b, ctx) => h("div", { class: "block block-context" }, (b.elements || []).map((e) => element(e, b, ctx))),
    actions: (b, ctx) => h("div", { class: "block block-actions" }, (b.elements || []).map((e) => element(e, b, ctx))),
    image: (b) => h("div", { class: "block block-image", text: `🖼 ${b.alt_text || b.title?.text || "image"}` }),
    input: (b, ctx) => inputBlock(b, ctx),
    rich_text: (b) => richText(b),
  };

  function blocks(list, ctx) {
    return (list || []).map((b) => (BLOCKS[b.type] ? BLOCKS[b.type](b, ctx) : h("div", { class: "block-unknown", text: `[${b.type} block]` })));
  }

  // -- talking to the local Slack ----------------------------------------------------------
  async function api(action, body) {
    const response = await fetch(`/_emulator/${action}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({ ok: false, error: response.statusText }));
    if (!data.ok) {
      toast(`Slack refused that: ${data.error}`, true);
      throw new Error(data.error);
    }
    const reply = data.result;
    if (reply && typeof reply === "object" && "status" in reply && !(reply.status >= 200 && reply.status < 300)) {
      toast(`Baton did not take that (${reply.status ?? reply.error ?? "no answer"})`, true);
    }
    return reply;
  }

  async function act(button, action, body) {
    if (button) button.disabled = true;
    try {
      return await api(action, body);
    } catch {
      return null;
    } finally {
      if (button) button.disabled = false;
    }
  }

  let refreshTimer = null;
  let refreshing = null;
  function scheduleRefresh(delay = 25) {
    if (!refreshTimer) refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, delay);
  }

  async function refresh() {
    if (refreshing) return scheduleRefresh(50);
    refreshing = fetch(`/_emulator/state?user=${encodeURIComponent(S.me)}`).then((r) => r.json());
    try {
      S.data = await refreshing;
      const keys = messageKeys(S.data);
      S.fresh = S.known ? new Set([...keys].filter((k) => !S.known.has(k))) : new Set();
      S.known = keys;
      render();
      S.fresh = new Set();
    } finally {
      refreshing = null;
    }
  }

  function messageKeys(data) {
    const keys = new Set();
    for (const [channelId, list] of Object.entries(data.messages)) for (const m of list) keys.add(`${channelId}/${m.ts}/m`);
    for (const m of data.ephemerals || []) keys.add(`${m.channel}/${m.ts}/e`);
    return keys;
  }

  const PRIVATE_FREE = new Set(["tour", "typing", "delivery", "interaction"]);
  function onChange(change) {
    if (change.user && change.user !== S.me && !PRIVATE_FREE.has(change.kind)) return;
    if (change.kind === "tour") return onTour(change.data);
    if (change.kind === "typing") return onTyping(change.data);
    if (change.kind === "delivery" || change.kind === "interaction") return onTraffic(change);
    if (change.kind === "view_errors") S.viewErrors[change.data.view_id] = change.data.errors;
    scheduleRefresh();
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/_emulator/ws`);
    socket.addEventListener("open", () => {
      $("offline").hidden = true;
      if (!document.body.dataset.live) loadDemo(); // after the stream is live: the tour's first caption is not missed
      document.body.dataset.live = "yes";
      refresh();
    });
    socket.addEventListener("message", (event) => onChange(JSON.parse(event.data)));
    socket.addEventListener("close", () => {
      $("offline").hidden = false;
      document.body.dataset.live = "no";
      setTimeout(connect, 1000);
    });
  }

  // -- people do things --------------------------------------------------------------------
  function toSlack(text) {
    let s = text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    const names = [];
    for (const u of S.data.users) for (const n of [u.display_name, u.real_name, u.name]) if (n) names.push([n, u.id]);
    names.sort((a, b) => b[0].length - a[0].length);
    for (const [name, id] of names) {
      const pattern = new RegExp(`@${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\b`, "gi");
      s = s.replace(pattern, `<@${id}>`);
    }
    return s;
  }

  async function send(text, channelId, threadTs) {
    text = text.trim();
    if (!text) return true;
    if (text.startsWith("/")) {
      const command = text.split(/\s+/)[0];
      if (command !== "/baton") {
        toast(`${command} is not a command here. Try /baton help.`, true);
        return false;
      }
      return (await act(null, "slash_command", { user: S.me, channel: channelId, command, text: text.slice(command.length).trim() })) !== null;
    }
    const ts = await act(null, "post", { user: S.me, channel: channelId, text: toSlack(text), thread_ts: threadTs || null });
    if (ts && !threadTs && isMember(channel(channelId), botId())) openThread(channelId, ts); // Baton answers in the thread
    return ts !== null;
  }

  function react(m, channelId, name) {
    const mine = (m.reactions || []).some((r) => r.name === name && r.users.includes(S.me));
    act(null, mine ? "unreact" : "react", { user: S.me, channel: channelId, ts: m.ts, name });
  }

  function setMe(id) {
    if (!id || id === S.me) return;
    S.me = id;
    remember();
    localStorage.setItem("baton-demo-as", id);
    S.data && render();
    refresh();
  }

  // Who you are, where you are and the open thread, in the URL: a reload or a copied link opens the same.
  function remember() {
    const url = new URL(location.href);
    const set = (name, value) => (value ? url.searchParams.set(name, value) : url.searchParams.delete(name));
    set("as", S.me);
    set("channel", S.view.kind === "channel" ? S.view.id : null);
    set("home", S.view.kind === "home" ? S.view.tab : null);
    set("thread", S.thread ? `${S.thread.channel}-${S.thread.ts}` : null);
    if (url.href !== location.href) history.replaceState(null, "", url);
  }

  function recall(params) {
    const home = params.get("home");
    if (home === "home" || home === "messages") S.view = { kind: "home", tab: home };
    else if (params.get("channel")) S.view = { kind: "channel", id: params.get("channel") };
    const thread = /^([A-Z0-9_]+)-(\d+\.\d+)$/.exec(params.get("thread") || "");
    if (thread) S.thread = { channel: thread[1], ts: thread[2] };
  }

  // Narrow windows hide the channel list behind #nav-toggle (see style.css); picking a place closes it.
  function showNav(open) {
    document.body.dataset.nav = open ? "open" : "closed";
    $("nav-toggle").setAttribute("aria-expanded", String(open));
  }

  function openChannel(id) {
    showNav(false);
    S.view = { kind: "channel", id };
    if (S.thread && S.thread.channel !== id && !isMember(channel(S.thread.channel))) S.thread = null;
    render();
    $("composer-text").focus();
  }

  function openHome(tab = "home", notify = true) {
    showNav(false);
    S.view = { kind: "home", tab };
    if (tab === "home" && notify) act(null, "open_home", { user: S.me });
    render();
  }

  function openThread(channelId, ts) {
    S.thread = { channel: channelId, ts };
    render();
    $("thread-text").focus();
  }

  // -- drawing -----------------------------------------------------------------------------
  function render() {
    if (!S.data) return;
    const u = me();
    if (!u) return setMe(S.data.users.find((x) => !x.is_bot)?.id);
    fixView();
    renderViewer();
    renderSidebar(u);
    renderMain();
    renderThread();
    renderModal();
    renderTyping();
    settle();
    remember();
  }

  function fixView() {
    const channels = visibleChannels();
    const isHost = me().team_id === hostTeam();
    if (S.view.kind === "home" && !isHost) S.view = { kind: "channel", id: null };
    if (S.view.kind === "channel" && !channels.some((c) => c.id === S.view.id)) {
      S.view = { kind: "channel", id: (channels.find((c) => c.is_ext_shared) || channels[0])?.id ?? null };
    }
    if (S.thread && !isMember(channel(S.thread.channel))) S.thread = null;
  }

  function renderViewer() {
    const select = $("viewer");
    const people = S.data.users.filter((u) => !u.is_bot);
    people.sort((a, b) => (a.team_id === hostTeam()) - (b.team_id === hostTeam()) || (a.is_admin - b.is_admin));
    const key = people.map((u) => u.id).join();
    if (select.dataset.key !== key) {
      select.replaceChildren(...people.map((u) => h("option", { value: u.id, text: `${u.real_name} · ${role(u)}` })));
      select.dataset.key = key;
    }
    select.value = S.me;
  }

  function navItem(label, glyph, active, onclick, badge, attrs = {}) {
    return h("button", { class: active ? "nav-item active" : "nav-item", type: "button", onclick, ...attrs },
      h("span", { class: "glyph", text: glyph }), h("span", { text: label }), badge ? h("span", { class: "badge", text: badge }) : null);
  }

  function renderSidebar(u) {
    $("team-name").textContent = team(u.team_id)?.name ?? "";
    $("me-name").textContent = `${u.real_name}${u.title ? ` · ${u.title}` : ""}`;
    const items = [h("div", { class: "nav-section", text: "Channels" })];
    for (const c of visibleChannels()) {
      const active = S.view.kind === "channel" && S.view.id === c.id;
      items.push(navItem(c.name, c.is_private ? "🔒" : "#", active, () => openChannel(c.id), c.is_ext_shared ? "Connect" : null, { "data-channel": c.id }));
    }
    if (u.team_id === hostTeam()) {
      items.push(h("div", { class: "nav-section", text: "Apps" }));
      items.push(navItem("Baton", "🤖", S.view.kind === "home", () => openHome(), null, { "data-home": "yes" }));
    }
    items.push(h("div", { class: "nav-note", html: guide(u) }));
    $("nav").replaceChildren(...items);
  }

  function guide(u) {
    if (u.team_id !== hostTeam()) {
      return `You are <b>${esc(u.real_name)}</b> at ${esc(team(u.team_id)?.name)}, a customer of ${esc(team(hostTeam())?.name)}. ` +
        "Ask anything in the shared channel: Baton answers in the thread. Get upset, or ask for a person, and a person takes over.";
    }
    if (u.is_admin || u.is_owner) {
      return `You are <b>${esc(u.real_name)}</b>, an admin. Type <code>/baton help</code>, <code>/baton csat</code> or ` +
        "<code>/baton triggers</code> in any channel; open Baton under Apps for the dashboard.";
    }
    return `You are <b>${esc(u.real_name)}</b>, an agent. Handoffs arrive in #support-agents: reply in a card's thread ` +
      "and the customer sees it under your name (start with <code>note:</code> to keep it internal).";
  }

  function renderMain() {
    const home = S.view.kind === "home";
    const dm = myDm();
    const showsMessages = !home || S.view.tab === "messages";
    $("home").hidden = !home || S.view.tab !== "home";
    $("messages").hidden = !showsMessages;
    $("composer").hidden = !showsMessages || (home && !dm);
    $("composer-hint").hidden = $("composer").hidden;
    renderHeader();
    if (home && S.view.tab === "home") return renderHome();
    const channelId = home ? dm?.id : S.view.id;
    if (!channelId) return $("messages").replaceChildren(h("div", { class: "empty", text: "No channel to show." }));
    const c = channel(channelId);
    $("composer-text").placeholder = home ? "Message Baton" : `Message #${c.name}`;
    $("composer").dataset.channel = channelId;
    fill($("messages"), channelId, timeline(channelId).map((m, i, all) => messageNode(m, channelId, { previous: all[i - 1] })), emptyChannel(c));
  }

  function renderHeader() {
    const header = $("channel-header");
    if (S.view.kind === "home") {
      const tabs = h("div", { class: "tabs" },
        h("button", { class: S.view.tab === "home" ? "tab active" : "tab", type: "button", onclick: () => openHome("home"), text: "Home" }),
        h("button", { class: S.view.tab === "messages" ? "tab active" : "tab", type: "button", onclick: () => openHome("messages"), text: "Messages" }));
      return header.replaceChildren(avatar(botId(), "Baton"), h("span", { class: "channel-title", text: "Baton" }), h("span", { class: "app-tag", text: "APP" }), tabs);
    }
    const c = channel(S.view.id);
    if (!c) return header.replaceChildren();
    const teams = (c.shared_team_ids || []).map((id) => team(id)?.name).filter(Boolean);
    const parts = [h("span", { class: "channel-title", text: `${c.is_private ? "🔒" : "#"} ${c.name}` })];
    if (c.is_ext_shared) parts.push(h("span", { class: "connect", title: "Slack Connect: shared between organisations", text: `🤝 ${teams.join(" & ")}` }));
    parts.push(h("span", { class: "channel-purpose", text: c.purpose || c.topic || "" }));
    header.replaceChildren(...parts);
  }

  function renderHome() {
    const view = (S.data.views || []).find((v) => v.type === "home");
    const pane = $("home");
    if (!view) {
      // Arrived here by a link, a reload or a change of person, not a click: Slack opens the tab the same.
      if (S.homeAsked !== S.me) {
        S.homeAsked = S.me;
        act(null, "open_home", { user: S.me });
      }
      return pane.replaceChildren(h("div", { class: "home-empty", text: "Opening Baton's Home tab…" }));
    }
    const ctx = { act: (e, value, node) => act(node, "click_view", { user: S.me, view_id: view.id, action_id: e.action_id, value }) };
    pane.replaceChildren(...blocks(view.blocks, ctx));
  }

  function emptyChannel(c) {
    if (!c) return null;
    if (c.is_ext_shared && me().team_id !== hostTeam()) {
      return h("div", { class: "empty", html: "<strong>This is the start of #" + esc(c.name) + ".</strong><br>Ask Baton something, like " +
        "<em>How do I reset my password?</em> Then try being upset, or asking for a person." });
    }
    if (!isMember(c, botId())) return h("div", { class: "empty", text: "Baton is not in this channel, so it stays quiet here." });
    return h("div", { class: "empty", html: "<strong>Nothing here yet.</strong> " + (c.is_ext_shared ? "Customers' questions appear here." : "Handoffs from Baton will land here.") });
  }

  function timeline(channelId) {
    const all = S.data.messages[channelId] || [];
    const top = all.filter((m) => !isReply(m) || m.subtype === "thread_broadcast");
    const mine = (S.data.ephemerals || []).filter((m) => m.channel === channelId && !m.thread_ts);
    return [...top, ...mine].sort(byTs);
  }

  function threadOf(channelId, ts) {
    const all = S.data.messages[channelId] || [];
    const parent = all.find((m) => m.ts === ts);
    const replies = all.filter((m) => m.thread_ts === ts && m.ts !== ts);
    const mine = (S.data.ephemerals || []).filter((m) => m.channel === channelId && m.thread_ts === ts);
    return { parent, replies: [...replies, ...mine].sort(byTs) };
  }

  // Replace a list's content, staying at the bottom if it was there (or if it shows something new).
  // The scrolling waits for `settle()`: opening the thread pane after this narrows the channel.
  const scrolls = new Map(); // list -> "bottom" or the scrollTop to keep
  const nearBottom = (list) => list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  function fill(list, key, nodes, empty) {
    const fresh = list.dataset.key !== key;
    const atBottom = nearBottom(list);
    const top = list.scrollTop;
    list.replaceChildren(...(nodes.length || !empty ? nodes : [empty]));
    list.dataset.key = key;
    scrolls.set(list, fresh || atBottom ? "bottom" : top);
  }

  function settle() {
    for (const [list, where] of scrolls) list.scrollTop = where === "bottom" ? list.scrollHeight : where;
    scrolls.clear();
  }

  // A list the person left at its bottom stays there when it changes size between renders
  // (the traffic drawer opens, the window narrows, the composer grows a line).
  function keepBottom(list) {
    let stuck = true;
    list.addEventListener("scroll", () => { stuck = nearBottom(list); });
    new ResizeObserver(() => { if (stuck) list.scrollTop = list.scrollHeight; }).observe(list);
  }

  function messageNode(m, channelId, { previous = null, inThread = false } = {}) {
    const who = author(m);
    const key = `${channelId}/${m.ts}/${m.is_ephemeral ? "e" : "m"}`;
    const compact = previous && !previous.is_ephemeral && !m.is_ephemeral && author(previous).key === who.key &&
      author(previous).name === who.name && parseFloat(m.ts) - parseFloat(previous.ts) < 300 && !previous.reply_count;
    const cls = ["msg", compact && "compact", m.is_ephemeral && "ephemeral", S.fresh.has(key) && "flash"];
    const foreign = who.team && who.team !== me().team_id ? team(who.team)?.name : null;
    const meta = compact ? null : h("div", { class: "meta" },
      h("span", { class: "name", text: who.name }),
      who.app ? h("span", { class: "app-tag", text: "APP" }) : null,
      foreign ? h("span", { class: "org", text: foreign }) : null,
      h("span", { class: "time", text: clock(m.ts), title: m.ts }));
    const body = h("div", { class: "body" },
      meta,
      m.is_ephemeral ? h("div", { class: "ephemeral-note", text: "👁 Only visible to you" }) : null,
      content(m, channelId),
      m.edited && !m.bot_id ? h("span", { class: "edited", text: " (edited)" }) : null,
      files(m),
      reactions(m, channelId),
      !inThread && m.reply_count ? repliesLink(m, channelId) : null);
    return h("div", { class: cls.filter(Boolean).join(" "), "data-ts": m.ts, "data-author": who.key, "data-name": who.name },
      avatar(who.key, who.name), body, toolbar(m, channelId, inThread));
  }

  function content(m, channelId) {
    if (m.subtype === "tombstone") return h("div", { class: "text edited", text: "This message was deleted." });
    const rich = (m.blocks || []).filter((b) => b.type !== "rich_text");
    if (!rich.length) return h("div", { class: "text mrkdwn", html: mrkdwn(m.text) });
    const ctx = {
      act: (e, value, node) => act(node, "click", { user: S.me, channel: channelId, message_ts: m.ts, action_id: e.action_id, value }),
    };
    return h("div", { class: "text" }, blocks(m.blocks, ctx));
  }

  function files(m) {
    if (!m.files?.length) return null;
    return h("div", { class: "files" }, m.files.map((f) => h("span", { class: "file", text: `📄 ${f.title || f.name}` })));
  }

  function reactions(m, channelId) {
    if (!m.reactions?.length) return null;
    return h("div", { class: "reactions" }, m.reactions.map((r) => {
      const names = r.users.map((id) => nameOf(user(id))).join(", ");
      const mine = r.users.includes(S.me);
      return h("button", {
        class: mine ? "reaction mine" : "reaction", type: "button", title: `${names} reacted with :${r.name}:`,
        "data-reaction": r.name, onclick: () => react(m, channelId, r.name),
      }, h("span", { text: emoji(r.name) ?? `:${r.name}:` }), h("span", { text: r.count }));
    }));
  }

  function repliesLink(m, channelId) {
    const faces = (m.reply_users || []).slice(0, 3).map((id) => avatar(id, nameOf(user(id)), true));
    const count = `${m.reply_count} ${m.reply_count === 1 ? "reply" : "replies"}`;
    return h("button", { class: "replies", type: "button", "data-thread": m.ts, onclick: () => openThread(channelId, m.ts) },
      faces, h("span", { text: count }), h("span", { class: "latest", text: `Last reply ${clock(m.latest_reply || m.ts)}` }));
  }

  function toolbar(m, channelId, inThread) {
    if (m.is_ephemeral || m.subtype === "tombstone") return null;
    const quick = [["+1", "👍"], ["-1", "👎"], ["white_check_mark", "✅"]].map(([name, glyph]) =>
      h("button", { type: "button", title: `React with :${name}:`, "aria-label": `React with ${glyph}`, "data-react": name, text: glyph, onclick: () => react(m, channelId, name) }));
    const reply = inThread ? null : h("button", { type: "button", title: "Reply in thread", "aria-label": "Reply in thread", text: "💬", onclick: () => openThread(channelId, m.thread_ts || m.ts) });
    return h("div", { class: "toolbar" }, quick, reply);
  }

  function renderThread() {
    const pane = $("thread");
    if (!S.thread) return (pane.hidden = true);
    const { parent, replies } = threadOf(S.thread.channel, S.thread.ts);
    if (!parent) return (pane.hidden = true);
    pane.hidden = false;
    const c = channel(S.thread.channel);
    $("thread-sub").textContent = `#${c?.name ?? ""}`;
    const nodes = [messageNode(parent, c.id, { inThread: true })];
    if (replies.length) nodes.push(h("div", { class: "thread-divider", text: `${replies.length} ${replies.length === 1 ? "reply" : "replies"}` }));
    replies.forEach((m, i) => nodes.push(messageNode(m, c.id, { previous: replies[i - 1], inThread: true })));
    fill($("thread-messages"), `${c.id}/${parent.ts}`, nodes);
  }

  function renderModal() {
    const root = $("modal-root");
    const modals = (S.data.views || []).filter((v) => v.type === "modal" && !S.dismissed.has(v.id));
    const view = modals[modals.length - 1];
    const key = view ? `${view.id}/${view.hash}/${JSON.stringify(S.viewErrors[view.id] || {})}` : "";
    if (root.dataset.key === key) return; // keep what the person typed
    root.dataset.key = key;
    if (!view) return root.replaceChildren();
    const ctx = {
      inputs: [],
      errors: S.viewErrors[view.id],
      act: (e, value, node) => act(node, "click_view", { user: S.me, view_id: view.id, action_id: e.action_id, value }),
    };
    // As in Slack: Cancel closes this view, × the whole stack; the local Slack closes them for every tab.
    const close = (clear) => () => {
      for (const v of clear ? modals : [view]) S.dismissed.add(v.id);
      root.dataset.key = "closing";
      renderModal();
      act(null, "close_view", { user: S.me, view_id: view.id, clear });
    };
    const submit = async (event) => {
      event.preventDefault();
      const values = {};
      for (const input of ctx.inputs) (values[input.block] ??= {})[input.action] = input.get();
      delete S.viewErrors[view.id];
      await act(event.submitter, "submit_view", { user: S.me, view_id: view.id, values });
    };
    const form = h("form", { class: "modal", role: "dialog", "aria-modal": "true", onsubmit: submit },
      h("div", { class: "modal-header" }, h("span", { class: "modal-title", html: plain(view.title) }), h("button", { class: "ghost", type: "button", onclick: close(true), text: "×", "aria-label": "Close" })),
      h("div", { class: "modal-body" }, blocks(view.blocks, ctx)),
      h("div", { class: "modal-footer" },
        h("button", { class: "btn", type: "button", onclick: close(false), html: plain(view.close) || "Cancel" }),
        view.submit ? h("button", { class: "btn primary", type: "submit", html: plain(view.submit) }) : null));
    root.replaceChildren(h("div", { class: "overlay" }, form));
  }

  // -- live extras: typing, the tour, traffic ---------------------------------------------
  function onTyping(data) {
    const key = `${data.channel}/${data.thread_ts || ""}/${data.user}`;
    S.typing.set(key, { ...data, until: Date.now() + data.seconds * 1000 });
    renderTyping();
    setTimeout(renderTyping, data.seconds * 1000 + 50);
  }

  function renderTyping() {
    const now = Date.now();
    const main = [];
    const side = [];
    for (const [key, t] of S.typing) {
      if (t.until < now) { S.typing.delete(key); continue; }
      const who = nameOf(user(t.user));
      const where = S.view.kind === "channel" ? S.view.id : myDm()?.id;
      if (!t.thread_ts && t.channel === where) main.push(who);
      if (t.thread_ts && S.thread && t.channel === S.thread.channel && t.thread_ts === S.thread.ts) side.push(who);
    }
    $("typing").textContent = main.length ? `${main.join(", ")} ${main.length > 1 ? "are" : "is"} typing…` : "";
    $("thread-typing").textContent = side.length ? `${side.join(", ")} ${side.length > 1 ? "are" : "is"} typing…` : "";
  }

  function onTour(data) {
    $("caption").hidden = false;
    $("caption-step").textContent = data.done ? "Tour done" : `Tour ${data.step}/${data.of}`;
    $("caption-text").textContent = data.text;
    $("tour").disabled = !data.done;
    if (!S.follow || !data.as) return;
    setMe(data.as);
    if (data.view === "home") openHome("home", false);
    else openChannel(data.channel);
    if (data.thread_ts) openThread(data.channel, data.thread_ts);
  }

  function onTraffic(change) {
    const d = change.data;
    const time = new Date(change.time * 1000).toLocaleTimeString();
    const ok = d.status >= 200 && d.status < 300;
    const what = change.kind === "delivery"
      ? `event ${d.event_type}${d.retry_num ? ` (retry ${d.retry_num})` : ""} · ${d.status ?? d.reason} · ${Math.round(d.elapsed * 1000)} ms`
      : `${d.kind} · ${d.status ?? d.error}`;
    const list = $("traffic-list");
    list.append(h("li", { class: ok ? "ok" : "bad", text: `${time}  → POST /slack/events  ${what}` }));
    while (list.children.length > 80) list.firstChild.remove();
    list.scrollTop = list.scrollHeight;
  }

  async function playTour() {
    $("tour").disabled = true;
    const response = await fetch("/_demo/tour", { method: "POST" });
    if (!response.ok) toast("The tour is already playing.");
  }

  async function loadEmoji() {
    const response = await fetch("/_emulator/emoji").catch(() => null);
    if (!response || !response.ok) return;
    Object.assign(EMOJI, await response.json());
    render();
  }

  async function loadDemo() {
    const response = await fetch("/_demo/info").catch(() => null);
    if (!response || !response.ok) return;
    S.demo = await response.json();
    if (!S.demo.tour) return;
    $("tour").hidden = false;
    $("tour").disabled = S.demo.tour.running;
    if (S.demo.tour.autoplay && !S.demo.tour.played) playTour();
  }

  // -- wiring --------------------------------------------------------------------------------
  function composer(form, textarea, target) {
    const submit = async () => {
      const [channelId, threadTs] = target();
      if (!channelId) return;
      const text = textarea.value;
      textarea.value = "";
      grow();
      if (!(await send(text, channelId, threadTs))) textarea.value = text;
    };
    const grow = () => {
      textarea.style.height = "auto";
      textarea.style.height = `${Math.min(textarea.scrollHeight, 160)}px`;
    };
    form.addEventListener("submit", (event) => { event.preventDefault(); submit(); });
    textarea.addEventListener("input", grow);
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); submit(); }
    });
  }

  function onLink(event) {
    const target = event.target.closest("a");
    if (!target) return;
    if (target.dataset.channel) {
      event.preventDefault();
      if (isMember(channel(target.dataset.channel))) openChannel(target.dataset.channel);
      return;
    }
    const found = /\/archives\/([A-Z0-9_]+)\/p(\d+)(?:\?thread_ts=([\d.]+))?/.exec(target.getAttribute("href") || "");
    if (!found || !isMember(channel(found[1]))) return;
    event.preventDefault();
    const ts = found[3] || `${found[2].slice(0, -6)}.${found[2].slice(-6)}`;
    openChannel(found[1]);
    openThread(found[1], ts);
  }

  function start() {
    const params = new URLSearchParams(location.search);
    S.me = params.get("as") || localStorage.getItem("baton-demo-as") || "U_CUST1";
    recall(params);
    $("viewer").addEventListener("change", (event) => setMe(event.target.value));
    $("thread-close").addEventListener("click", () => { S.thread = null; render(); });
    $("caption-close").addEventListener("click", () => { $("caption").hidden = true; });
    $("tour").addEventListener("click", playTour);
    $("traffic-toggle").addEventListener("click", () => { $("traffic").hidden = !$("traffic").hidden; });
    document.addEventListener("click", onLink);
    $("nav-toggle").addEventListener("click", () => showNav(document.body.dataset.nav !== "open"));
    $("workspace").addEventListener("click", (event) => {
      if (document.body.dataset.nav === "open" && !event.target.closest(".sidebar")) showNav(false);
    });
    keepBottom($("messages"));
    keepBottom($("thread-messages"));
    composer($("composer"), $("composer-text"), () => [$("composer").dataset.channel, null]);
    composer($("thread-composer"), $("thread-text"), () => (S.thread ? [S.thread.channel, S.thread.ts] : [null, null]));
    loadEmoji();
    connect();
  }

  start();
})();
