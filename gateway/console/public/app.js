// The operators' console. Live over MQTT over WebSocket with the operator's own
// login: the broker's ACL decides what this page may read and request, exactly as
// for any other console (docs/topics.md). State is rebuilt from the retained
// topics at every (re)connection: the page keeps nothing the gateway does not.
import {
  CODE_NAMES,
  commandName,
  commandOutcome,
  deviceLabel,
  householdLabel,
  householdWithResident,
  metricsText,
  refusalWords,
  STRINGS,
  stateKey,
  textWith,
} from "./i18n.js";
import { HeldAlerts, RESOLVE_GRACE_MS, RESOLVE_MAX_MS, RESOLVE_QUIET_MS, SyncResolver } from "./sync.js";
import { alertOrder, isQuiet, isUnacknowledged, pendingP1, reminderDue } from "./watch.js";

const $ = (sel) => document.querySelector(sel);

const state = {
  lang: localStorage.getItem("linli.lang") || null,
  site: null,
  user: null,
  client: null,
  alerts: new Map(), // alert topic -> alert JSON
  status: new Map(), // deviceId -> "online" | "lost"
  outOfService: new Map(), // deviceId -> {by, since}: retained devices/<id>/service
  readings: new Map(), // deviceId -> telemetry JSON
  monitoring: new Map(), // householdId -> monitoring JSON
  flood: null,
  gateway: null,
  results: [],
  seenP1: new Set(), // P1 alert ids already announced; bounded by SEEN_P1_KEPT
  // alert id -> "紧急呼叫 · 1号楼 101室": a result names its alert after the alert has closed
  // (an acknowledged call closes at once). Bounded by LABELS_KEPT, oldest forgotten first.
  alertLabels: new Map(),
  connected: false,
  // Connected, and every open alert the gateway's summary names has arrived since: until then an
  // empty list means "not known yet", never "no alerts".
  synced: false,
  held: new HeldAlerts(), // the retained alert states held, counted and digested as the summary
  summary: null, // the latest retained alerts/summary: the set to hold before saying synced
  // Still not synced after a grace: asks the gateway which alerts are open (list, topics 0.13.31).
  resolver: null,
  resolveTimer: null,
  resolveDelay: 0,
  resolveNote: null, // what the last round did: { fetched, dropped }, shown while syncing
  // Synced, then the summary changed and what is held did not match it after a grace (a message
  // missed): not synced any more, said so, and resolved with list again (checkDrift).
  drift: false,
  driftTimer: null,
  syncedAt: 0, // when it last came to be synced: a drift soon after keeps the rounds' backoff
  lastRoundAt: 0, // when the last list round started: the next waits resolveDelay after it
  fetchedTopics: [], // exact alert topics subscribed to fetch states again, until synced
  lastStateAt: 0, // when the last alert state arrived: no round while they still pour in
  // P3/P4 folded into one line with their counts (kept in the browser, like the language).
  foldLow: localStorage.getItem("linli.foldLow") === "1",
  // When the live link went down (ms), null while connected or before the first connection: the
  // page then says it is not live instead of showing what it last knew as the present.
  lostAt: null,
  lastSoundAt: 0, // the last P1 sound: unacknowledged P1s are sounded again every P1_REMINDER_MS
};
const RESULTS_KEPT = 30;
// A console stays open for months: past this many, ids of alerts no longer open are forgotten
// (a closed alert never comes back with the same id).
const SEEN_P1_KEPT = 1000;
const LABELS_KEPT = 2000;
const STATION_MODELS = new Set(["mfs8", "gk3", "lv4"]);

function t(key) {
  const lang = state.lang || "zh-CN";
  return key.split(".").reduce((o, k) => (o == null ? o : o[k]), STRINGS[lang]) ?? key;
}

function applyTexts() {
  const lang = state.lang || "zh-CN";
  document.documentElement.lang = lang;
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  // The duration is data on the option (data-minutes), never read back from a label already translated.
  for (const opt of $("#dialog-duration").options) {
    const minutes = Number(opt.dataset.minutes);
    opt.textContent =
      minutes >= 60 ? `${minutes / 60} ${t("units.hours")}` : `${minutes} ${t("units.minutes")}`;
  }
  renderRole();
}

function setLang(lang) {
  state.lang = lang;
  localStorage.setItem("linli.lang", lang);
  applyTexts();
  render();
}

function toggleLang() {
  setLang((state.lang || "zh-CN") === "zh-CN" ? "en" : "zh-CN");
}

// ---- time, in the site's time zone ----------------------------------------

// One formatter per language and time zone: building one per call cost more than the card it was for.
let timeFormat = { key: "", format: null };
function fmtTime(ms) {
  if (ms == null) return "";
  const lang = state.lang || "zh-CN";
  const timeZone = state.site?.site.timezone;
  const key = `${lang}|${timeZone}`;
  if (timeFormat.key !== key)
    timeFormat = {
      key,
      format: new Intl.DateTimeFormat(lang, {
        timeZone,
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
        hour12: false,
      }),
    };
  return timeFormat.format.format(new Date(ms));
}

function fmtAge(ms) {
  const s = Math.max(0, Math.floor((Date.now() - ms) / 1000));
  if (s < 60) return `${s} ${t("units.seconds")}`;
  if (s < 3600) return `${Math.floor(s / 60)} ${t("units.minutes")}`;
  if (s < 86400)
    return `${Math.floor(s / 3600)} ${t("units.hours")} ${Math.floor((s % 3600) / 60)} ${t("units.minutes")}`;
  return `${Math.floor(s / 86400)} ${t("units.days")}`;
}

// ---- login -----------------------------------------------------------------

function basic(user, pass) {
  const bytes = new TextEncoder().encode(`${user}:${pass}`);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return `Basic ${btoa(bin)}`;
}

let audio = null;

async function login(event) {
  event.preventDefault();
  const user = $("#username").value.trim();
  const pass = $("#password").value;
  const err = $("#login-error");
  err.hidden = true;
  // A user gesture: the only moment a browser lets the page prepare its alarm sound.
  try {
    audio ??= new AudioContext();
    void audio.resume();
  } catch {
    audio = null;
  }
  let res;
  try {
    res = await fetch("api/site", { headers: { authorization: basic(user, pass) }, cache: "no-store" });
  } catch {
    err.textContent = t("cannotReach");
    err.hidden = false;
    return;
  }
  if (res.status === 401) {
    err.textContent = t("wrongPassword");
    err.hidden = false;
    return;
  }
  if (res.status === 429) {
    // The address is banned after too many failed logins; Retry-After says for how long (seconds),
    // the gateway's header until when in the site's time.
    const seconds = Number(res.headers.get("retry-after"));
    const until = res.headers.get("linli-logins-paused-until");
    if (until && Number.isFinite(seconds) && seconds > 0) {
      showLoginPause(until, seconds);
      return;
    }
    const minutes = Number.isFinite(seconds) && seconds > 0 ? Math.ceil(seconds / 60) : 1;
    err.textContent = t("tooManyAttempts").replace("{n}", String(minutes));
    err.hidden = false;
    return;
  }
  if (res.status === 503) {
    // Reached, but it could not check the password now (a reconnect storm): try again shortly.
    err.textContent = t("gatewayBusy");
    err.hidden = false;
    return;
  }
  if (!res.ok) {
    err.textContent = `${t("cannotReach")}${t("open")}${res.status}${t("close")}`;
    err.hidden = false;
    return;
  }
  state.site = await res.json();
  state.user = user;
  renderRole();
  if (!state.lang) state.lang = state.site.site.locale === "zh-CN" ? "zh-CN" : "en";
  applyTexts();
  $("#site-name").textContent = state.site.site.name ?? state.site.site.id;
  $("#login").hidden = true;
  $("#app").hidden = false;
  connect(user, pass);
}

let pauseTimer = null;

/**
 * Logins from this address are paused (a login ban) until `until` (HH:MM, the site's time): said
 * in Chinese and English whatever the page's language (a desk may not read the other), and taken
 * away when the ban ends. The form stays: an operator who last logged in from here still may.
 */
function showLoginPause(until, seconds) {
  const el = $("#login-paused");
  el.replaceChildren(
    ...["zh-CN", "en"].map((lang) => {
      const line = document.createElement("span");
      line.lang = lang;
      line.textContent = STRINGS[lang].loginsPaused.replace("{t}", until);
      return line;
    }),
  );
  el.hidden = false;
  clearTimeout(pauseTimer);
  pauseTimer = setTimeout(() => {
    el.hidden = true;
  }, seconds * 1000);
}

/** At page load: whether logins from here are paused, before anyone types a password. */
async function checkLoginPause() {
  try {
    const res = await fetch("api/login-status", { cache: "no-store" });
    if (!res.ok) return;
    const status = await res.json();
    if (status.loginsPaused) showLoginPause(status.until, status.retryAfter);
  } catch {
    // Unreachable: the login says so when tried.
  }
}

function logout() {
  state.client?.end(true);
  state.client = null;
  state.user = null;
  $("#password").value = "";
  $("#app").hidden = true;
  $("#login").hidden = false;
}

// ---- MQTT ------------------------------------------------------------------

function topicBase() {
  return `linli/${state.site.site.id}/`;
}

function connect(user, pass) {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/mqtt`;
  const suffix = Math.random().toString(36).slice(2, 10);
  const client = mqtt.connect(url, {
    username: user,
    password: pass,
    clientId: `${user}-console-${suffix}`,
    clean: true,
    protocolVersion: 4,
    reconnectPeriod: 1000,
    connectTimeout: 5000,
    // A link that dies silently (cable, Wi-Fi) is noticed by the missing ping answer: within
    // about 2 keepalives, so the page says it is not live within ~20 s, not ~60 s.
    keepalive: 10,
    // The page subscribes itself at every connection, in one SUBSCRIBE whose last filter is the
    // sync marker (below); mqtt.js's own re-subscription would send a second, unordered one.
    resubscribe: false,
  });
  state.client = client;
  const base = topicBase();
  client.on("connect", () => {
    // Everything the page shows is rebuilt from the retained topics on every connection.
    state.alerts.clear();
    state.held.clear();
    state.summary = null;
    state.status.clear();
    state.outOfService.clear();
    state.monitoring.clear();
    state.flood = null;
    state.connected = true;
    state.synced = false;
    state.drift = false;
    state.lostAt = null;
    subscribeAll(client, user);
    startResolving(client, base);
    render();
  });
  client.on("close", () => {
    if (state.connected) state.lostAt = Date.now();
    state.connected = false;
    stopResolving();
    render();
  });
  client.on("error", (e) => {
    // CONNACK 4/5: the password changed or the account went: back to the login.
    if (e && (e.code === 4 || e.code === 5)) {
      logout();
      const err = $("#login-error");
      err.textContent = t("wrongPassword");
      err.hidden = false;
    }
  });
  client.on("message", (topic, payload, packet) => onMessage(topic.slice(base.length), payload, packet));
}

/**
 * One SUBSCRIBE for everything. Synced is said when the alert states held are the set the
 * gateway's retained `alerts/summary` names (count and digest, docs/topics.md 0.13.28), in
 * whatever order a broker sends retained messages: mosquitto and EMQX promise none. (The
 * gateway's own broker sends them filter by filter, `gateway/status` last: kept for tools that
 * rely on it, no longer what the page trusts.) Surer than a quiet window (10,000 open alerts take
 * seconds to arrive on a tablet).
 */
function subscribeAll(client, user) {
  const base = topicBase();
  client.subscribe(
    [
      `${base}alerts/#`,
      `${base}escalations/#`,
      `${base}devices/+/status`,
      `${base}devices/+/service`,
      `${base}telemetry/#`,
      `${base}households/+/monitoring`,
      `${base}ops/result/${user}`,
      `${base}cmd/+/+/result`,
      `${base}gateway/status`,
    ],
    { qos: 1 },
  );
}

function parse(payload) {
  if (payload.length === 0) return null;
  try {
    return JSON.parse(new TextDecoder().decode(payload));
  } catch {
    return undefined;
  }
}

function onMessage(topic, payload, packet) {
  const parts = topic.split("/");
  // Status topics carry plain text (`online`, `lost`, `offline`), not JSON (docs/topics.md).
  if (
    (parts[0] === "devices" && parts[2] === "status") ||
    (parts[0] === "gateway" && parts[1] === "status")
  ) {
    const text = new TextDecoder().decode(payload).trim();
    if (parts[0] === "gateway") state.gateway = text || null;
    else if (text === "") state.status.delete(parts[1]);
    else state.status.set(parts[1], text);
    scheduleRender();
    return;
  }
  const body = parse(payload);
  if (body === undefined) return;
  if (parts[0] === "alerts" || parts[0] === "escalations") state.alertsDirty = true;
  if (parts[0] === "alerts" && parts.length === 4) {
    state.lastStateAt = Date.now();
    state.held.apply(topic, body);
    checkSynced();
    if (body === null || body.state === "closed") state.alerts.delete(topic);
    else {
      state.alerts.set(topic, body);
      rememberLabel(body);
      const isNewP1 =
        body.priority === 1 &&
        !packet.retain &&
        body.state === "active-unacknowledged" &&
        !state.seenP1.has(body.id);
      if (body.priority === 1) rememberP1(body.id);
      if (isNewP1) alarm();
    }
  } else if (parts[0] === "alerts" && parts[1] === "flood") {
    state.flood = body;
  } else if (parts[0] === "alerts" && parts[1] === "summary") {
    state.summary = body;
    checkSynced();
    watchDrift();
  } else if (parts[0] === "escalations" && body) {
    for (const [topic, a] of state.alerts) {
      if (a.id === body.id) {
        // A new object, not a change in place: the card kept for the old one is rebuilt.
        state.alerts.set(topic, { ...a, escalationLevel: body.escalation?.level ?? a.escalationLevel });
        if (a.priority === 1) alarm();
      }
    }
  } else if (parts[0] === "devices" && parts[2] === "service") {
    // Retained while out of service; an empty payload is back in service (docs/topics.md 0.9.4).
    if (body && body.inService === false) state.outOfService.set(parts[1], body);
    else state.outOfService.delete(parts[1]);
  } else if (parts[0] === "telemetry" && body) {
    state.readings.set(body.deviceId ?? parts[2], body);
  } else if (parts[0] === "households" && body) {
    state.monitoring.set(parts[1], body);
  } else if (parts[0] === "ops" && body?.action === "list") {
    // The sync's own requests: handled there, not shown as results.
    state.resolver?.onResult(body);
  } else if ((parts[0] === "ops" || (parts[0] === "cmd" && parts[3] === "result")) && body) {
    state.results.unshift({ at: Date.now(), topic, body });
    state.results.length = Math.min(state.results.length, RESULTS_KEPT);
  } else {
    return;
  }
  scheduleRender();
}

/**
 * Synced once the alert states held are exactly the set the latest summary names (a console that
 * connected while the gateway was starting gets the summary live once the alerts are republished).
 * Later changes arrive live; each new summary is checked again (watchDrift).
 */
function checkSynced() {
  if (state.synced || !state.held.matches(state.summary)) return;
  state.synced = true;
  state.drift = false;
  state.syncedAt = Date.now();
  state.alertsDirty = true;
  stopResolving();
}

/**
 * Synced, and a new summary does not match what is held: usually for a moment (the summary and
 * the alert states are different topics, in no order to rely on). A mismatch that outlasts
 * RESOLVE_GRACE_MS (a message missed: a broker that dropped it, a state lost) makes the page say
 * it is not synced and resolve it with list as at a connection, its rounds backing off; the
 * backoff starts again from the grace only after RESOLVE_MAX_MS synced, so a mismatch that comes
 * back at once is not a loop of lists.
 */
function watchDrift() {
  if (!state.connected || !state.synced || state.driftTimer !== null) return;
  if (state.held.matches(state.summary)) return;
  state.driftTimer = setTimeout(checkDrift, RESOLVE_GRACE_MS);
}

function checkDrift() {
  state.driftTimer = null;
  if (!state.connected || !state.synced || state.held.matches(state.summary)) return;
  // States still arriving (a burst): look again when they are quiet.
  const quietFor = Date.now() - state.lastStateAt;
  if (quietFor < RESOLVE_QUIET_MS) {
    state.driftTimer = setTimeout(checkDrift, RESOLVE_QUIET_MS - quietFor);
    return;
  }
  state.synced = false;
  state.drift = true;
  state.alertsDirty = true;
  if (Date.now() - state.syncedAt > RESOLVE_MAX_MS) state.resolveDelay = RESOLVE_GRACE_MS;
  armResolve(Math.max(0, state.lastRoundAt + state.resolveDelay - Date.now()));
  render();
}

function stopDriftWatch() {
  if (state.driftTimer !== null) clearTimeout(state.driftTimer);
  state.driftTimer = null;
}

/**
 * A mismatch that lasts (a broker that dropped retained states, a state held stale, one closed
 * while the page was away): after RESOLVE_GRACE_MS the page asks the gateway which alerts are open
 * (`list/p<n>`, answered on its `ops/result`), drops those that closed and fetches the missing or
 * stale ones again by subscribing to their exact topics (the broker sends their retained states).
 * Again with a doubling delay while it still does not match; any role may (a viewer too).
 */
function startResolving(client, base) {
  stopResolving();
  state.resolveNote = null;
  state.resolveDelay = RESOLVE_GRACE_MS;
  state.resolver = new SyncResolver(
    state.held,
    {
      request: (priority, after, ref) =>
        client.publish(`${base}list/p${priority}`, JSON.stringify(after ? { after, ref } : { ref }), {
          qos: 1,
        }),
      fetch: (topics) => {
        const full = topics.map((topic) => base + topic);
        state.fetchedTopics.push(...full);
        client.subscribe(full, { qos: 1 });
      },
      drop: (topic) => {
        state.alerts.delete(topic);
        state.alertsDirty = true;
      },
      done: (last) => {
        state.resolveNote = last;
        // Refused for its rate (the gateway's bound per account): not before it says.
        if (last.retryAfterMs > 0) state.resolveDelay = Math.max(state.resolveDelay, last.retryAfterMs);
        checkSynced();
        scheduleRender();
      },
    },
    base,
  );
  armResolve();
}

function armResolve(delay = state.resolveDelay) {
  state.resolveTimer = setTimeout(() => {
    state.resolveTimer = null;
    if (!state.connected || state.synced || state.resolver === null) return;
    // States still arriving (thousands on a big site): not a mismatch yet, look again when quiet.
    const quietFor = Date.now() - state.lastStateAt;
    if (quietFor < RESOLVE_QUIET_MS) return armResolve(RESOLVE_QUIET_MS - quietFor);
    // Subscriptions of the last round's fetches have delivered their retained states by now.
    unsubscribeFetched();
    // No summary at all (a broker that dropped it too): fetched again by its exact topic.
    if (state.summary === null) {
      state.fetchedTopics.push(`${topicBase()}alerts/summary`);
      state.client?.subscribe(`${topicBase()}alerts/summary`, { qos: 1 });
    }
    if (state.resolver.start(state.summary)) {
      state.lastRoundAt = Date.now();
      state.resolveDelay = Math.min(state.resolveDelay * 2, RESOLVE_MAX_MS);
      scheduleRender();
    }
    armResolve();
  }, delay);
}

function unsubscribeFetched() {
  if (state.fetchedTopics.length > 0) state.client?.unsubscribe(state.fetchedTopics);
  state.fetchedTopics = [];
}

function stopResolving() {
  stopDriftWatch();
  if (state.resolveTimer !== null) clearTimeout(state.resolveTimer);
  state.resolveTimer = null;
  if (state.connected) unsubscribeFetched();
  else state.fetchedTopics = []; // a new connection (clean session) starts without them
  state.resolver?.reset();
}

/**
 * "紧急呼叫 · 1号楼 101室": what and where, by the names people use; where none is configured, what
 * the id is ("住户 hh-1", "燃气报警器 g-1"), as the gateway's messages say it, never a bare id.
 */
function alertLabel(a) {
  const who = a.household
    ? householdWho(a.household, a.householdName, a.residentName)
    : a.model === "gateway"
      ? t("theGateway")
      : deviceName(a.deviceId, a.deviceName, a.model);
  return `${codeName(a.code)} · ${who}`;
}

/** A household's name (the alert's, else the site's), else "住户 hh-1". */
function householdName(id, name) {
  return householdLabel(state.lang || "zh-CN", id, name ?? household(id)?.name);
}

/** A household and its resident (the alert's, else the site's): "1号楼 101室 张阿姨". */
function householdWho(id, name, resident) {
  const h = household(id);
  return householdWithResident(state.lang || "zh-CN", id, name ?? h?.name, resident ?? h?.residentName);
}

/** A device's name (the alert's, else the site's), else its model and id: "燃气报警器 g-1". */
function deviceName(id, name, model) {
  const d = device(id);
  return deviceLabel(state.lang || "zh-CN", id, name ?? d?.name, model ?? d?.model);
}

function rememberLabel(a) {
  state.alertLabels.delete(a.id);
  state.alertLabels.set(a.id, a);
  if (state.alertLabels.size > LABELS_KEPT) state.alertLabels.delete(state.alertLabels.keys().next().value);
}

function rememberP1(id) {
  state.seenP1.add(id);
  if (state.seenP1.size <= SEEN_P1_KEPT) return;
  const open = new Set([...state.alerts.values()].map((a) => a.id));
  for (const seen of state.seenP1) if (!open.has(seen)) state.seenP1.delete(seen);
}

function publish(path, body) {
  state.client?.publish(`${topicBase()}${path}`, JSON.stringify({ by: state.user, ...body }), { qos: 1 });
}

// ---- the P1 alarm: a sound and a flash -------------------------------------

function alarm() {
  state.lastSoundAt = Date.now();
  const flash = $("#flash");
  flash.hidden = false;
  flash.style.animation = "none";
  void flash.offsetWidth;
  flash.style.animation = "";
  setTimeout(() => {
    flash.hidden = true;
  }, 3000);
  if (!audio) return;
  const start = audio.currentTime;
  for (let i = 0; i < 3; i++) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.2;
    osc.connect(gain).connect(audio.destination);
    osc.start(start + i * 0.4);
    osc.stop(start + i * 0.4 + 0.25);
  }
}

// ---- operator actions ------------------------------------------------------

/**
 * `noteLabel`: the note is the request's `reason` for shelve and out of service, its `note` for an ack.
 * `warn`: a line said above the fields (a command that moves a valve); `value`: {min, max} of an
 * integer the request writes (an LV-4 set-point), asked and checked before it is sent.
 */
function ask(title, withDuration, withNote = true, noteLabel = "note", { warn = null, value = null } = {}) {
  const dialog = $("#dialog");
  $("#dialog-title").textContent = title;
  $("#dialog-note-row span").textContent = t(noteLabel);
  $("#dialog-duration-row").hidden = !withDuration;
  $("#dialog-note-row").hidden = !withNote;
  $("#dialog-warn").hidden = warn === null;
  $("#dialog-warn").textContent = warn ?? "";
  // Disabled when not asked: a hidden required field would block every other dialog's submit.
  const input = $("#dialog-value");
  $("#dialog-value-row").hidden = value === null;
  input.disabled = value === null;
  input.value = "";
  if (value !== null) {
    input.min = String(value.min);
    input.max = String(value.max);
    $("#dialog-value-label").textContent = t("cmdValue")
      .replace("{min}", String(value.min))
      .replace("{max}", String(value.max));
  }
  // Only what the site allows (alerts.shelveMax): a longer choice would be refused as shelve-too-long.
  const maxMinutes = (state.site?.shelveMaxMs ?? Number.POSITIVE_INFINITY) / 60_000;
  const select = $("#dialog-duration");
  for (const opt of select.options) opt.hidden = opt.disabled = Number(opt.dataset.minutes) > maxMinutes;
  if (select.selectedOptions[0]?.disabled) select.selectedIndex = 0;
  $("#dialog-note").value = "";
  return new Promise((resolve) => {
    dialog.onclose = () =>
      resolve(
        dialog.returnValue === "ok"
          ? {
              note: $("#dialog-note").value.trim(),
              duration: $("#dialog-duration").value,
              value: input.disabled ? undefined : Number(input.value),
            }
          : null,
      );
    dialog.showModal();
  });
}

async function onAction(event) {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const { action, target } = button.dataset;
  if (action === "fold") toggleFoldLow();
  else if (action === "ack") {
    const r = await ask(`${t("ack")} · ${button.dataset.label}`, false);
    if (r) publish(`ack/${target}`, r.note ? { note: r.note } : {});
  } else if (action === "shelve") {
    const r = await ask(`${t("shelve")} · ${button.dataset.label}`, true, true, "reasonNote");
    if (r) publish(`shelve/${target}`, { duration: r.duration, reason: r.note || undefined });
  } else if (action === "unshelve") {
    publish(`unshelve/${target}`, {});
  } else if (action === "service") {
    const r = await ask(`${button.textContent} · ${button.dataset.label}`, false, true, "reasonNote");
    if (r)
      publish(`service/${target}`, {
        inService: button.dataset.value === "true",
        reason: r.note || undefined,
      });
  } else if (action === "away") {
    // Away pauses an elderly resident's welfare checks: asked first, so a stray tap on a tablet
    // does not switch them off unseen. The request has no note (docs/topics.md).
    const away = button.dataset.value === "true";
    const r = await ask(`${t(away ? "awayConfirm" : "backConfirm")} · ${button.dataset.label}`, false, false);
    if (r) publish(`away/${target}`, { away });
  } else if (action === "cmd") {
    await sendCommand(target, button.dataset.command, button.dataset.label);
  }
}

/**
 * A device command from the console: the same request on the same topic as any MQTT client's
 * (docs/topics.md "Device commands"), so the gateway's one check of the role, the command and its
 * value applies. Asked first when it moves something on site or writes a value.
 */
async function sendCommand(deviceId, name, label) {
  const c = device(deviceId)?.commands?.find((x) => x.name === name);
  if (!c) return;
  const title = `${t("cmdConfirm").replace("{command}", commandLabel(c))} · ${label}`;
  let value;
  if (c.value || c.confirm) {
    const r = await ask(title, false, false, "note", {
      warn: c.confirm ? t("cmdActuates").replace("{device}", label) : null,
      value: c.value,
    });
    if (!r) return;
    value = r.value;
  }
  // The id comes back in every result of this command (the device's reply too).
  const id = `${state.user}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  publish(`cmd/${deviceId}/${name}`, value === undefined ? { id } : { id, value });
}

/** A command's name as the page's language says it; a YAML profile's by its own name. */
function commandLabel(c) {
  const lang = state.lang || "zh-CN";
  return c.names?.[lang] ?? commandName(lang, c.name);
}

/** The device's commands its profile declares (api/site), for a role that may send them. */
function commandButtons(d, label) {
  if (!may("cmd") || !Array.isArray(d?.commands) || d.commands.length === 0) return "";
  return el(
    "div",
    { class: "commands" },
    d.commands.map((c) =>
      el(
        "button",
        { "data-action": "cmd", "data-target": d.id, "data-command": c.name, "data-label": label },
        commandLabel(c),
      ),
    ),
  );
}

// ---- rendering -------------------------------------------------------------

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render(false);
  });
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role") e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children.flat()) if (c != null && c !== "") e.append(c);
  return e;
}

// By id, built once per login: a card looks up its household and device (1,000 cards × a
// thousand households was a million comparisons per render).
let byId = { site: null, households: new Map(), devices: new Map() };
function lookups() {
  if (byId.site !== state.site)
    byId = {
      site: state.site,
      households: new Map((state.site?.households ?? []).map((h) => [h.id, h])),
      devices: new Map((state.site?.devices ?? []).map((d) => [d.id, d])),
    };
  return byId;
}
function household(id) {
  return lookups().households.get(id) ?? null;
}
function device(id) {
  return lookups().devices.get(id) ?? null;
}
function codeName(code) {
  // Built-in codes in the page's language; a YAML profile's own codes by the title it gives them.
  return CODE_NAMES[state.lang || "zh-CN"]?.[code] ?? state.site?.codeNames?.[code] ?? code;
}

function alertCard(a) {
  const h = household(a.household);
  const d = device(a.deviceId);
  const place = a.household ? householdWho(a.household, a.householdName, a.residentName) : null;
  const room = a.room ?? h?.room;
  const resident = a.residentName ?? h?.residentName;
  const phone = a.contactPhone ?? h?.contactPhone;
  // The gateway's own alerts (storage) name it, not its subject id "gateway".
  const deviceText = a.model === "gateway" ? t("theGateway") : deviceName(a.deviceId, a.deviceName, a.model);
  const location = a.location ?? d?.location;
  const unacked = isUnacknowledged(a);
  const label = `${codeName(a.code)} · ${place ?? deviceText}`;
  const actions = [];
  if (unacked && may("ack"))
    actions.push(
      el(
        "button",
        { class: "primary", "data-action": "ack", "data-target": a.id, "data-label": label },
        t("ack"),
      ),
    );
  if (a.suppression === "shelved" && may("unshelve"))
    actions.push(
      el("button", { "data-action": "unshelve", "data-target": a.id, "data-label": label }, t("unshelve")),
    );
  else if (a.priority > 1 && a.suppression == null && may("shelve"))
    actions.push(
      el("button", { "data-action": "shelve", "data-target": a.id, "data-label": label }, t("shelve")),
    );
  return el(
    "article",
    {
      class: `alert p${a.priority}${unacked ? " unacked" : ""}${isQuiet(a) ? " quiet" : ""}`,
      "data-alert-id": a.id,
      "data-priority": String(a.priority),
      "data-code": a.code,
    },
    el(
      "div",
      { class: "head" },
      // Where to go: the household, or for a fire station, tank or kiosk the device and its place.
      el(
        "span",
        { class: "code" },
        codeName(a.code),
        " ",
        `· ${place ?? `${deviceText}${location ? `（${location}）` : ""}`}`,
      ),
      el(
        "span",
        {},
        el("span", { class: `badge state-${a.state}` }, t(`states.${stateKey(a)}`)),
        a.suppression ? el("span", { class: "badge" }, " ", t(`suppression.${a.suppression}`)) : "",
        a.urgent ? el("span", { class: "badge" }, " ", t("urgent")) : "",
        a.test ? el("span", { class: "badge" }, " ", t("test")) : "",
        a.cancelledByResident ? el("span", { class: "badge" }, " ", t("cancelledByResident")) : "",
      ),
    ),
    a.message ? el("div", { class: "message" }, a.message) : "",
    el(
      "div",
      { class: "meta" },
      resident
        ? el(
            "span",
            {},
            `${t("resident")}${t("colon")}${resident}${room ? `${t("open")}${room}${t("close")}` : ""}`,
          )
        : "",
      phone ? el("span", {}, `${t("phone")}${t("colon")}`, el("a", { href: `tel:${phone}` }, phone)) : "",
      el("span", {}, `${t("device")}${t("colon")}${deviceText}${location ? ` · ${location}` : ""}`),
      el("span", {}, `${t("raisedAt")}${t("colon")}${fmtTime(a.raisedAt)}`),
      el(
        "span",
        { class: "age", "data-since": String(a.raisedAt) },
        `${t("age")}${t("colon")}${fmtAge(a.raisedAt)}`,
      ),
      a.count > 1 ? el("span", {}, `${t("count")}${t("colon")}${a.count}`) : "",
      a.escalationLevel
        ? el("span", {}, textWith(state.lang || "zh-CN", "escalationLevel", a.escalationLevel))
        : "",
      a.ackedBy
        ? el(
            "span",
            {},
            `${t("ackedBy")}${t("colon")}${a.ackedBy}${a.ackNote ? `${t("open")}${a.ackNote}${t("close")}` : ""}`,
          )
        : "",
      // The reason is what the next shift needs to leave it shelved ("外壳松动，明天维修").
      a.shelvedBy
        ? el(
            "span",
            {},
            `${t("shelvedBy")}${t("colon")}${a.shelvedBy} → ${fmtTime(a.shelvedUntil)}${a.shelveReason ? `${t("open")}${a.shelveReason}${t("close")}` : ""}`,
          )
        : "",
    ),
    a.action ? el("div", { class: "todo" }, `${t("action")}${t("colon")}${a.action}`) : "",
    el("div", { class: "actions" }, actions),
    // What the device can be told from here (a GD-2's valve during a GAS_LEAK).
    a.model === "gateway" ? "" : commandButtons(d, deviceText),
  );
}

// A card is built once per state of its alert (the message's object) and language, and moved
// thereafter: with 1,000 open alerts a change rebuilt 1,000 cards (and the scroll anchor with them).
// Holds only cards of alerts open now: an alert gone leaves with the next render.
// Its buttons are the logged-in role's: another login builds it again.
const cards = new Map(); // alert topic -> { alert, lang, role, el }

function cardFor(topic, a) {
  const lang = state.lang || "zh-CN";
  const role = state.site?.operator?.role;
  const kept = cards.get(topic);
  if (kept && kept.alert === a && kept.lang === lang && kept.role === role) return kept.el;
  const built = alertCard(a);
  cards.set(topic, { alert: a, lang, role, el: built });
  return built;
}

// One section per priority, kept: taken out and put back, a section of 3,000 cards was styled and
// laid out anew at every render (3,000 closes in a burst took 10 s to show).
const groups = new Map(); // priority -> { section, h3 }
function groupFor(p) {
  let g = groups.get(p);
  if (!g) {
    const h3 = el("h3");
    g = { section: el("section", { class: `group p${p}` }, h3), h3 };
    groups.set(p, g);
  }
  return g;
}

/** Makes `parent`'s children `desired`, in order, moving and removing only what differs. */
function syncChildren(parent, desired) {
  const want = new Set(desired);
  for (const c of [...parent.children]) if (!want.has(c)) c.remove();
  let cur = parent.firstElementChild;
  for (const node of desired) {
    if (cur === node) cur = cur.nextElementSibling;
    else parent.insertBefore(node, cur);
  }
}

/**
 * The first cards in view and where they are, to keep them there: several, so that when the top
 * one goes (acknowledged and closed) the next one holds the view.
 */
function scrollAnchor() {
  const found = [];
  for (const c of document.querySelectorAll("#alerts [data-alert-id]")) {
    const r = c.getBoundingClientRect();
    if (r.bottom <= 0) continue;
    found.push({ id: c.dataset.alertId, top: r.top });
    if (found.length === 5 || r.top > window.innerHeight) break;
  }
  return found;
}

function keepAnchor(anchors) {
  for (const anchor of anchors ?? []) {
    const again = document.querySelector(`#alerts [data-alert-id="${CSS.escape(anchor.id)}"]`);
    if (!again) continue;
    const moved = again.getBoundingClientRect().top - anchor.top;
    if (moved !== 0) window.scrollBy(0, moved);
    return;
  }
}

/** "3 条（2 条未确认）": a folded priority's line. */
function foldedLine(p, list) {
  const waiting = list.filter(isUnacknowledged).length;
  const lang = state.lang || "zh-CN";
  return el(
    "p",
    { class: `folded p${p}`, "data-priority": String(p) },
    `${t(`priority.${p}`)}${t("colon")}${textWith(lang, "alertsCount", list.length)}`,
    waiting ? textWith(lang, "unackedCount", waiting) : "",
  );
}

function renderAlerts() {
  const byPriority = new Map();
  for (const [topic, a] of state.alerts) {
    if (!byPriority.has(a.priority)) byPriority.set(a.priority, []);
    byPriority.get(a.priority).push([topic, a]);
  }
  const box = $("#alerts");
  const anchor = box.childElementCount > 0 && window.scrollY > 0 ? scrollAnchor() : null;
  const children = [];
  // Not yet known: said above whatever has arrived, never an empty list read as "no alerts".
  if (state.connected && !state.synced)
    children.push(
      el(
        "p",
        { class: "syncing", role: "status" },
        // "已收到 N 条，共 M 条" once the summary says how many there are.
        state.drift && typeof state.summary?.open === "number"
          ? textWith(state.lang || "zh-CN", "syncDrift", state.held.size).replace(
              "{m}",
              String(state.summary.open),
            )
          : typeof state.summary?.open === "number"
            ? textWith(state.lang || "zh-CN", "syncingOf", state.held.size).replace(
                "{m}",
                String(state.summary.open),
              )
            : textWith(state.lang || "zh-CN", "syncing", state.alerts.size),
      ),
    );
  // What the page does about a mismatch that lasts (startResolving), in words.
  if (state.connected && !state.synced && state.resolver !== null) {
    const resolving = state.resolver.state === "listing";
    if (resolving || state.resolveNote !== null)
      children.push(
        el(
          "p",
          { class: "sync-resolve", role: "status" },
          resolving
            ? t("syncResolving")
            : textWith(state.lang || "zh-CN", "syncResolved", state.resolveNote.fetched).replace(
                "{m}",
                String(state.resolveNote.dropped),
              ),
        ),
      );
  }
  const priorities = [...byPriority.keys()].sort((x, y) => x - y);
  const low = priorities.filter((p) => p >= 3);
  const lowCount = low.reduce((n, p) => n + byPriority.get(p).length, 0);
  const shown = new Set();
  for (const p of priorities) {
    if (p === low[0] && (state.synced || state.drift)) {
      // P3/P4 under one heading the operator can fold to a line per priority: P1/P2 stay on top.
      children.push(
        el(
          "div",
          { class: "low-fold" },
          el(
            "button",
            {
              type: "button",
              id: "fold-low",
              class: "link",
              "data-action": "fold",
              "aria-expanded": String(!state.foldLow),
            },
            `${state.foldLow ? "▸" : "▾"} ${textWith(state.lang || "zh-CN", state.foldLow ? "unfoldLow" : "foldLow", lowCount)}`,
          ),
        ),
      );
    }
    // Waiting for a person first, the longest waiting at the top.
    const list = byPriority.get(p).sort((x, y) => alertOrder(x[1], y[1]));
    // While syncing, P3/P4 are counted, not drawn: drawing thousands of cards again at every frame
    // of the sync took minutes on a big site, and P1/P2 are what must show at once.
    if (p >= 3 && (state.foldLow || !(state.synced || state.drift))) {
      children.push(
        foldedLine(
          p,
          list.map(([, a]) => a),
        ),
      );
      continue;
    }
    const group = groupFor(p);
    group.h3.textContent = `${t(`priority.${p}`)}${t("open")}${list.length}${t("close")}`;
    syncChildren(group.section, [
      group.h3,
      ...list.map(([topic, a]) => {
        shown.add(topic);
        return cardFor(topic, a);
      }),
    ]);
    children.push(group.section);
  }
  for (const topic of cards.keys()) if (!shown.has(topic)) cards.delete(topic);
  // No all-clear from a page that is not live, or that has not heard all there is: it cannot know.
  if (priorities.length === 0 && (state.synced || !state.connected))
    children.push(el("p", { class: "hint" }, state.connected ? t("noAlerts") : t("noAlertsUnknown")));
  syncChildren(box, children);
  keepAnchor(anchor);
  $("#alert-count").textContent = `(${state.alerts.size}${state.connected && !state.synced ? "…" : ""})`;
}

function toggleFoldLow() {
  state.foldLow = !state.foldLow;
  localStorage.setItem("linli.foldLow", state.foldLow ? "1" : "0");
  renderAlerts();
  // The button is built anew: the keyboard stays on it.
  $("#fold-low")?.focus({ preventScroll: true });
}

const LINK_STATES = new Set(["online", "lost", "offline"]);

function statusText(s) {
  if (!s) return t("noMessageYet");
  return LINK_STATES.has(s) ? t(s) : s;
}

function statusClass(s) {
  return s === "online" ? "online" : s === "lost" || s === "offline" ? "lost" : "";
}

function statusCell(id) {
  const s = state.status.get(id);
  return el("td", { class: statusClass(s) }, statusText(s), outOfServiceMark(id));
}

/** "已停用" beside a device's link state while an operator has it out of service. */
function outOfServiceMark(id) {
  return state.outOfService.has(id)
    ? el("span", { class: "oos" }, ` · ${t("suppression.out-of-service")}`)
    : "";
}

/**
 * Whether the logged-in operator's role allows an action (api/site `operator.actions`): the page
 * offers no other. The gateway enforces it whatever a page sends; a gateway before roles sent no
 * list, and every action was allowed.
 */
function may(action) {
  const actions = state.site?.operator?.actions;
  return !Array.isArray(actions) || actions.includes(action);
}

/** The role beside the connection state: an operator sees why some buttons are not there. */
function renderRole() {
  const role = state.site?.operator?.role;
  const name = role ? t(`roles.${role}`) : "";
  $("#operator-role").textContent = role ? `${state.user} · ${name === `roles.${role}` ? role : name}` : "";
  $("#operator-role").title = role ? t("roleTitle") : "";
}

/** Take out of service / put back: one button for the device table and the stations panel. */
function serviceButton(d) {
  if (!may("service")) return "";
  const outOfService = state.outOfService.has(d.id);
  return el(
    "button",
    {
      "data-action": "service",
      "data-target": d.id,
      "data-value": String(outOfService),
      "data-label": deviceName(d.id, d.name, d.model),
    },
    outOfService ? t("inService") : t("outOfService"),
  );
}

/**
 * Puts `items` into `box` in order, building an element only for an item whose `keyOf` changed
 * since the last call and replacing only that one in place. A reading arrives every few seconds
 * on a big site: rebuilding every device's row at each (1,000 rows) cost more than the reading,
 * and swallowed a tap on 停用 whose press and release straddled the rebuild.
 */
function patchList(box, items, idOf, keyOf, build) {
  const kept = (box._rows ??= new Map()); // id -> { key, el }
  const els = [];
  let same = box.childElementCount === items.length;
  const ids = new Set();
  items.forEach((item, i) => {
    const id = idOf(item);
    ids.add(id);
    const key = keyOf(item);
    let row = kept.get(id);
    if (!row || row.key !== key) {
      const built = build(item);
      if (row && same && box.children[i] === row.el) row.el.replaceWith(built);
      row = { key, el: built };
      kept.set(id, row);
    }
    if (box.children[i] !== row.el) same = false;
    els.push(row.el);
  });
  for (const id of kept.keys()) if (!ids.has(id)) kept.delete(id);
  if (!same) box.replaceChildren(...els);
}

function renderDevices() {
  const devices = state.site?.devices ?? [];
  const lang = state.lang || "zh-CN";
  // Everything a row shows, as one string: the row is built again only when it changes.
  const keyOf = (d) =>
    `${lang}|${state.site?.operator?.role}|${state.status.get(d.id) ?? ""}|${state.outOfService.has(d.id)}|${
      STATION_MODELS.has(d.model)
        ? JSON.stringify(state.readings.get(d.id)?.metrics ?? null)
        : (state.readings.get(d.id)?.metrics?.battery?.value ?? "")
    }`;
  patchList(
    $("#devices tbody"),
    devices.filter((d) => !STATION_MODELS.has(d.model)),
    (d) => d.id,
    keyOf,
    (d) => {
      const battery = state.readings.get(d.id)?.metrics?.battery?.value;
      return el(
        "tr",
        { "data-device": d.id },
        el(
          "td",
          {},
          d.name ?? d.id,
          el("br"),
          el(
            "small",
            {},
            `${t(`models.${d.model}`)}${d.household ? ` · ${householdName(d.household)}` : ""}`,
          ),
        ),
        statusCell(d.id),
        el("td", {}, battery != null ? `${t("battery")} ${battery}%` : ""),
        // From the gateway's retained service state, so a device without open alerts counts too.
        el("td", {}, serviceButton(d), commandButtons(d, deviceName(d.id, d.name, d.model))),
      );
    },
  );
  const stations = $("#stations");
  stations.closest("section").hidden = !devices.some((d) => STATION_MODELS.has(d.model));
  patchList(
    stations,
    devices.filter((d) => STATION_MODELS.has(d.model)),
    (d) => d.id,
    keyOf,
    (d) =>
      el(
        "div",
        { class: "station", "data-device": d.id },
        el("strong", {}, d.name ?? d.id),
        " ",
        el("small", {}, t(`models.${d.model}`)),
        " ",
        el(
          "span",
          { class: statusClass(state.status.get(d.id)) },
          state.status.get(d.id) ? statusText(state.status.get(d.id)) : "",
        ),
        outOfServiceMark(d.id),
        " ",
        serviceButton(d),
        el("div", {}, metricsText(lang, d.model, state.readings.get(d.id)?.metrics)),
        commandButtons(d, deviceName(d.id, d.name, d.model)),
      ),
  );
  patchList(
    $("#households tbody"),
    state.site?.households ?? [],
    (h) => h.id,
    (h) => {
      const m = state.monitoring.get(h.id);
      return `${lang}|${state.site?.operator?.role}|${m?.state === "away"}|${m?.until ?? ""}`;
    },
    (h) => {
      const m = state.monitoring.get(h.id);
      const away = m?.state === "away";
      // Until when the welfare checks are paused (the request's `until`), in the site's time.
      return el(
        "tr",
        { "data-household": h.id },
        el(
          "td",
          {},
          householdName(h.id, h.name),
          h.residentName ? el("small", {}, ` · ${h.residentName}`) : "",
        ),
        el(
          "td",
          {},
          away
            ? `${t("awayState")}${m.until != null ? t("awayUntil").replace("{t}", fmtTime(m.until)) : ""}`
            : t("monitored"),
        ),
        el(
          "td",
          {},
          may("away")
            ? el(
                "button",
                {
                  "data-action": "away",
                  "data-target": h.id,
                  "data-value": String(!away),
                  "data-label": householdWho(h.id, h.name, h.residentName),
                },
                away ? t("back") : t("away"),
              )
            : "",
        ),
      );
    },
  );
}

/** What a result was about, named as people know it: the alert, the device, the household. */
function resultSubject(r) {
  const b = r.body;
  if (r.topic.startsWith("cmd/")) {
    const id = b.deviceId ?? r.topic.split("/")[1];
    const command = commandName(state.lang || "zh-CN", b.command ?? r.topic.split("/")[2]);
    return `${t("actions.command")} ${command} · ${deviceName(id)}`;
  }
  const action = t(`actions.${b.action}`);
  const name = action === `actions.${b.action}` ? (b.action ?? "") : action;
  let target = b.target ?? "";
  if (b.action === "service") {
    const d = device(b.target);
    if (d) target = `${deviceName(d.id)}${d.household ? ` · ${householdWho(d.household)}` : ""}`;
  } else if (b.action === "away") target = householdWho(b.target);
  else if (state.alertLabels.has(b.target)) target = alertLabel(state.alertLabels.get(b.target));
  return `${name} ${target}`;
}

/** Why it was refused: the site's words when the gateway gives them, a command's error named. */
function refusalText(b) {
  return refusalWords(state.lang || "zh-CN", b);
}

function renderResults() {
  $("#results").replaceChildren(
    ...state.results.map((r) => {
      const b = r.body;
      if (r.topic.startsWith("cmd/")) {
        const [text, cls] = commandOutcome(state.lang || "zh-CN", b, fmtTime);
        return el(
          "li",
          { class: cls, "data-command-id": b.id ?? null },
          `${fmtTime(b.at ?? r.at)} ${resultSubject(r)}${t("colon")}${text}`,
        );
      }
      const ok = b.ok !== false;
      // A device command waiting for a device with no connection (topics 0.13.41, 0.13.43): not done.
      const undelivered = ok && b.deviceConnected === false;
      return el(
        "li",
        { class: ok && !undelivered ? "" : "refused" },
        // What happened (topics 0.13.0: "已搁置至 2026-12-06 07:15") or why it was refused (0.9.0).
        `${fmtTime(b.at ?? r.at)} ${resultSubject(r)}${t("colon")}${
          ok
            ? `${undelivered ? t("notDelivered") : t("ok")}${b.message ? `${t("open")}${b.message}${t("close")}` : ""}`
            : `${t("refused")}${t("open")}${refusalText(b)}${t("close")}`
        }`,
      );
    }),
  );
}

/** The bar that stays on top of the page while a P1 is unacknowledged, and the tab's title. */
function renderP1Banner() {
  const pending = pendingP1(state.alerts.values());
  const banner = $("#p1-banner");
  banner.hidden = pending.length === 0;
  document.title = pending.length
    ? `【${textWith(state.lang || "zh-CN", "p1Pending", pending.length)}】${t("title")}`
    : t("title");
  if (!pending.length) return;
  $("#p1-text").textContent =
    `${textWith(state.lang || "zh-CN", "p1Pending", pending.length)}${t("colon")}${pending
      .slice(0, 3)
      .map(alertLabel)
      .join(t("listSep"))}${pending.length > 3 ? " …" : ""}`;
  $("#p1-show").dataset.target = pending[0].id;
}

/** Not live: said on top, and everything below greyed, so nothing old is read as the present. */
function renderLiveness() {
  const notLive = $("#not-live");
  notLive.hidden = state.connected;
  $("#app").classList.toggle("stale", !state.connected);
  if (!state.connected)
    notLive.textContent =
      state.lostAt == null ? t("notLiveYet") : t("notLiveSince").replace("{t}", fmtTime(state.lostAt));
}

/** The focused button, by what it does, so that a re-render does not take the keyboard's place away. */
function focusedAction() {
  const f = document.activeElement;
  return f?.dataset?.action
    ? { action: f.dataset.action, target: f.dataset.target, command: f.dataset.command }
    : null;
}
function restoreFocus(key) {
  if (!key || focusedAction()) return;
  const again = [...document.querySelectorAll("button[data-action]")].find(
    (b) =>
      b.dataset.action === key.action && b.dataset.target === key.target && b.dataset.command === key.command,
  );
  again?.focus({ preventScroll: true });
}

function render(alertsToo = true) {
  if (!state.site) return;
  const focus = focusedAction();
  renderLiveness();
  $("#clock").textContent = fmtTime(Date.now()); // in the page's language at once, not a second later
  const conn = $("#conn");
  const up = state.connected && state.gateway !== "offline";
  conn.className = `conn ${up ? "up" : "down"}`;
  conn.textContent = state.connected
    ? state.gateway === "offline"
      ? t("gatewayOffline")
      : state.synced
        ? t("connected")
        : state.drift
          ? t("syncDriftShort")
          : t("syncingShort")
    : t("reconnecting");
  const flood = $("#flood");
  flood.hidden = state.flood?.state !== "flood";
  if (!flood.hidden) flood.textContent = t("flood").replace("{n}", String(state.flood.newAlerts10m ?? ""));
  // Telemetry and link states do not touch the alert cards: rebuilding hundreds of them at every
  // reading would also swallow a click whose press and release straddle the rebuild.
  if (alertsToo || state.alertsDirty) {
    state.alertsDirty = false;
    renderAlerts();
    renderP1Banner();
  }
  renderDevices();
  renderResults();
  restoreFocus(focus);
}

setInterval(() => {
  // Only the ages whose text changed (past a minute, once a minute): not 1,000 writes a second.
  for (const e of document.querySelectorAll(".age[data-since]")) {
    const text = `${t("age")}${t("colon")}${fmtAge(Number(e.dataset.since))}`;
    if (e.textContent !== text) e.textContent = text;
  }
  if (state.site) $("#clock").textContent = fmtTime(Date.now());
  // A P1 nobody has acknowledged is sounded again (the flash too) until someone does.
  if (state.connected && reminderDue(Date.now(), state.lastSoundAt, pendingP1(state.alerts.values()).length))
    alarm();
}, 1000);

$("#login-form").addEventListener("submit", login);
$("#logout").addEventListener("click", logout);
$("#p1-show").addEventListener("click", () => {
  const card = document.querySelector(`[data-alert-id="${CSS.escape($("#p1-show").dataset.target ?? "")}"]`);
  card?.scrollIntoView({ block: "center" });
  card?.querySelector('button[data-action="ack"]')?.focus({ preventScroll: true });
});
for (const b of document.querySelectorAll(".lang")) b.addEventListener("click", toggleLang);

document.body.addEventListener("click", (e) => void onAction(e));
applyTexts();
void checkLoginPause();
