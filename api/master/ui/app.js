// The page's shell: routing on the `#` fragment, loading and rendering the current view,
// the live event stream that makes views load again, the status bar, the token, keyboard
// shortcuts, confirmations and messages.

import { Api, EventStream } from "./api.js";
import * as views from "./views.js";

const ROUTES = {
  "": views.overview,
  agents: views.agents,
  frameworks: views.frameworks,
  tasks: views.tasks,
  apps: views.apps,
  events: views.events,
  timeline: views.timeline,
};
const NAV_PAGE = { "": "overview" };
/// Events kept for the feed.
const EVENT_MEMORY = 1000;
/// How long a view waits after an event before loading again, so a burst costs one load.
const RELOAD_COALESCE_MS = 150;
/// The least time between the starts of two loads of a view; at least twice the last load's
/// duration, so a big cluster's stream of events cannot keep the page reading all the time.
const RELOAD_MIN_GAP_MS = 500;
/// The longest a held mouse button holds the view's replacement.
const PRESS_HOLD_MS = 2000;

/// How to find the focused element again in a view rendered anew: by its id, or by what
/// names it among its kind (a link's target, a button's `data-*` attributes), so that a
/// keyboard user's focus survives the reloads that events cause.
function focusSelector(element, main) {
  if (!element || element === main || !main.contains(element)) return null;
  if (element.id) return `#${CSS.escape(element.id)}`;
  const naming = [...element.attributes].filter((attribute) => attribute.name.startsWith("data-") || ["href", "aria-label", "role"].includes(attribute.name));
  if (!naming.length) return null;
  return element.tagName.toLowerCase() + naming.map((attribute) => `[${attribute.name}="${CSS.escape(attribute.value)}"]`).join("");
}

class App {
  constructor() {
    this.api = new Api();
    this.api.onChange = () => this.status();
    this.events = [];
    this.onLiveEvent = null;
    this.memories = new Map();
    this.view = null;
    this.route = null;
    this.generation = 0;
    this.pending = null;
    this.loading = false;
    this.lastLoadStart = 0;
    this.lastLoadMs = 0;
    // When a pointer button went down (null: it is up): the view is not replaced under it,
    // or the click would be lost.
    this.pressedAt = null;
    this.streamState = "connecting";
    this.main = document.getElementById("main");
  }

  /// Something a page keeps across its reloads (a filter, a log being followed).
  memory(key, make) {
    if (!this.memories.has(key)) this.memories.set(key, make());
    return this.memories.get(key);
  }

  async start() {
    this.authForm();
    this.skipLink();
    this.keyboard();
    this.pointer();
    window.addEventListener("hashchange", () => this.navigate());
    try {
      await this.api.readAuth();
    } catch (error) {
      this.toast(`The master does not say whether it enforces access control: ${error.message}`);
    }
    let from = null;
    for (;;) {
      if (this.api.needsToken() && !this.api.token) {
        this.askForToken();
        await this.api.nextToken();
      }
      try {
        const cluster = await this.api.refreshCluster();
        // The feed starts with the last hundred or so commands' events.
        const start = Math.max((cluster.audit_start || 1) - 1, (cluster.applied_index || 0) - 100, 0);
        from = String(start);
        break;
      } catch (error) {
        if (error.status === 401 || error.status === 403) {
          this.askForToken();
          await this.api.nextToken();
          continue;
        }
        this.toast(`The master does not answer: ${error.message}`);
        break;
      }
    }
    this.stream = new EventStream(this.api, {
      onEvent: (event) => this.event(event),
      onState: (state, address, detail) => {
        this.streamState = state;
        this.streamDetail = detail;
        this.status();
        // A new master may have applied more (or less) than the last: show its view.
        if (state === "live") this.reloadSoon();
      },
    });
    if (from !== null) this.stream.start(from);
    this.started = true;
    await this.navigate();
  }

  event(event) {
    this.events.push(event);
    if (this.events.length > EVENT_MEMORY) this.events.splice(0, this.events.length - EVENT_MEMORY);
    this.status();
    if (this.onLiveEvent) this.onLiveEvent(event);
    if (this.view && this.view.topics.includes(event.topic)) this.reloadSoon();
  }

  /// Loads the view again soon: one load for a burst of events, and a gap between loads that
  /// grows with what a load costs.
  reloadSoon() {
    if (this.pending) return;
    const gap = Math.max(RELOAD_MIN_GAP_MS, 2 * this.lastLoadMs);
    const wait = Math.max(RELOAD_COALESCE_MS, gap - (performance.now() - this.lastLoadStart));
    this.pending = setTimeout(() => {
      this.pending = null;
      this.load(false);
    }, wait);
  }

  /// Loads the view again in `ms` if it is still on the page: for what no event announces
  /// (the leader's offer matching behind `/v2/queue` is kept in memory, not logged).
  refreshIn(ms) {
    clearTimeout(this.refreshTimer);
    const view = this.view;
    this.refreshTimer = setTimeout(() => {
      if (this.view === view) this.reloadSoon();
    }, ms);
  }

  /// The page says it needs a token, where the user will look: the header's field, focused,
  /// and the main region, with the reason a token was refused if one was.
  askForToken() {
    if (!this.started) this.streamState = "waiting";
    this.status();
    const input = document.getElementById("token");
    this.main.replaceChildren(
      views.h("h1", {}, "Access control is on"),
      views.h("p", { id: "auth-message", class: this.api.refusal && this.api.token ? "refused" : "" },
        this.api.refusal || "This cluster enforces access control: enter a token (crl_…) in the field at the top right."),
      views.h("p", { class: "muted" }, "The token is kept in this tab only (sessionStorage) and sent as Authorization: Bearer."));
    input.focus();
  }

  parseRoute() {
    const path = location.hash.replace(/^#\/?/, "");
    const [page, ...rest] = path.split("/");
    const view = ROUTES[page] || null;
    const params = rest.filter((part, index) => part !== "" || index > 0).map(decodeURIComponent);
    return { page, view, params: page === "apps" ? rest.filter(Boolean).map(decodeURIComponent) : params };
  }

  async navigate() {
    const route = this.parseRoute();
    for (const [key, value] of this.memories) {
      if (key.startsWith("logs:") && value.stop) value.stop();
    }
    this.onLiveEvent = null;
    this.route = route;
    this.view = route.view;
    for (const anchor of document.querySelectorAll("#nav a")) {
      if (anchor.dataset.page === (NAV_PAGE[route.page] || route.page)) anchor.setAttribute("aria-current", "page");
      else anchor.removeAttribute("aria-current");
    }
    if (!route.view) {
      this.main.replaceChildren(views.h("h1", {}, "Not found"), views.h("p", {}, `No page '${route.page}'.`));
      return;
    }
    document.title = `${route.view.title} · Corral`;
    clearTimeout(this.pending);
    this.pending = null;
    clearTimeout(this.refreshTimer);
    await this.load(true);
  }

  async load(fresh) {
    if (this.loading) {
      // One more after the one in flight: the events it missed.
      this.again = true;
      return;
    }
    this.loading = true;
    this.lastLoadStart = performance.now();
    const generation = ++this.generation;
    const { view, params } = this.route;
    const ctx = { api: this.api, app: this, params };
    try {
      if (fresh) this.main.setAttribute("aria-busy", "true");
      const data = await view.load(ctx);
      if (generation !== this.generation || view !== this.view) return;
      if (this.pressed() && !fresh) {
        // Replaced between press and release, the button pressed would not get its click.
        this.again = true;
        return;
      }
      const active = document.activeElement;
      const focused = focusSelector(active, this.main);
      const caret = active && typeof active.selectionStart === "number" ? [active.selectionStart, active.selectionEnd] : null;
      const scroll = window.scrollY;
      if (view !== views.events) this.onLiveEvent = null;
      const content = view.render(ctx, data);
      this.main.replaceChildren(content);
      for (const [key, value] of this.memories) {
        if (key === `logs:${params[0]}` && view === views.tasks) value.start();
      }
      const refocus = focused && this.main.querySelector(focused);
      if (refocus) {
        refocus.focus({ preventScroll: true });
        if (caret && typeof refocus.setSelectionRange === "function") {
          try { refocus.setSelectionRange(caret[0], caret[1]); } catch (_) { /* not a text field */ }
        }
      }
      if (!fresh) window.scrollTo(0, scroll);
    } catch (error) {
      if (error.status === 401 || (error.status === 403 && this.api.refusal)) this.askForToken();
      else if (fresh) this.main.replaceChildren(views.h("h1", {}, view.title), views.h("p", { class: "empty" }, `Could not load: ${error.message}`));
      else this.toast(`Could not refresh: ${error.message}`);
    } finally {
      this.main.removeAttribute("aria-busy");
      this.loading = false;
      this.lastLoadMs = performance.now() - this.lastLoadStart;
      if (this.again && !this.pressed()) {
        this.again = false;
        this.reloadSoon();
      }
    }
  }

  /// Whether a button is held: a press not released within two seconds (a drag, or a release
  /// the page never saw) holds nothing.
  pressed() {
    return this.pressedAt !== null && performance.now() - this.pressedAt < PRESS_HOLD_MS;
  }

  /// Holds view replacements while a pointer button is down; the one held runs after.
  pointer() {
    document.addEventListener("pointerdown", () => { this.pressedAt = performance.now(); }, true);
    const up = () => {
      this.pressedAt = null;
      if (this.again && !this.loading) {
        this.again = false;
        this.reloadSoon();
      }
    };
    document.addEventListener("pointerup", up, true);
    document.addEventListener("pointercancel", up, true);
  }

  status() {
    const conn = document.getElementById("conn");
    const role = this.api.cluster ? this.api.cluster.role : "";
    const texts = {
      connecting: `connecting to ${this.api.current}…`,
      live: `live from ${this.api.current}${role ? ` (${role})` : ""}`,
      down: `${this.api.current} stopped answering; looking for another master…`,
      gap: `${this.api.current}: ${this.streamDetail}`,
      refused: `${this.api.current} refuses the stream: ${this.streamDetail}`,
      waiting: "waiting for a token",
    };
    conn.textContent = texts[this.streamState] || this.streamState;
    conn.className = `conn ${this.streamState === "live" ? "live" : this.streamState === "down" ? "down" : ""}`;
    const cursor = this.stream && this.stream.cursor;
    document.getElementById("cursor").textContent = cursor ? `cursor ${cursor}` : "";
    const auth = document.getElementById("auth-state");
    const form = document.getElementById("auth");
    const mode = this.api.auth;
    if (mode === "off") {
      auth.textContent = "access control: off";
      auth.title = "Every request is served without credentials.";
    } else if (mode === "permissive") {
      auth.textContent = this.api.token ? "access control: permissive · token set" : "access control: permissive (nothing is refused)";
      auth.title = "Decisions are made and counted, nothing is refused; a token names who acts.";
    } else if (mode === "enforce") {
      auth.textContent = this.api.refusal && this.api.token ? "access control: on · token refused"
        : this.api.token ? "access control: on · token set" : "access control: on · enter a token";
      auth.title = "Requests need a token.";
    } else {
      auth.textContent = "access control: ?";
    }
    // The token field only where a token means something.
    form.className = `auth ${mode === "off" ? "off" : ""} ${mode === "enforce" && (!this.api.token || this.api.refusal) ? "ask" : ""}`;
  }

  authForm() {
    const form = document.getElementById("auth");
    const input = document.getElementById("token");
    input.value = this.api.token;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.api.setToken(input.value.trim());
      // Whoever waited for a token (the start, the stream) carries on; a page already
      // started loads its view again with it.
      if (this.started) this.load(true);
    });
  }

  /// "Skip to content" focuses the main region; followed as a link, its `#main` would be
  /// routed as a page named "main".
  skipLink() {
    document.querySelector(".skip").addEventListener("click", (event) => {
      event.preventDefault();
      this.main.focus();
    });
  }

  keyboard() {
    const pages = ["", "agents", "frameworks", "tasks", "apps", "events", "timeline"];
    document.addEventListener("keydown", (event) => {
      const target = event.target;
      const typing = target && (["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName) || target.isContentEditable);
      if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key >= "1" && event.key <= "7") {
        location.hash = `#/${pages[Number(event.key) - 1]}`;
        event.preventDefault();
      } else if (event.key === "/") {
        const filter = document.getElementById("task-filter");
        if (filter) {
          filter.focus();
          event.preventDefault();
        }
      }
    });
  }

  /// A modal question; resolves true only on "Confirm". Escape and "Cancel" say no.
  confirm(question) {
    const dialog = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent = question;
    return new Promise((resolve) => {
      const ok = document.getElementById("confirm-ok");
      const cancel = document.getElementById("confirm-cancel");
      const done = (answer) => {
        ok.onclick = null;
        cancel.onclick = null;
        dialog.onclose = null;
        if (dialog.open) dialog.close();
        resolve(answer);
      };
      ok.onclick = () => done(true);
      cancel.onclick = () => done(false);
      // `close` is dispatched later than `close()` returns: the one from the last question,
      // answered just before this was asked, must not answer this one.
      dialog.onclose = () => {
        if (!dialog.open) done(false);
      };
      dialog.showModal();
      cancel.focus();
    });
  }

  toast(message, tone = "error") {
    const toast = document.getElementById("toast");
    toast.textContent = message;
    toast.className = `toast ${tone === "info" ? "info" : ""}`;
    toast.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { toast.hidden = true; }, 5000);
  }
}

const app = new App();
window.corral = app;
app.start();
