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
const RELOAD_DEBOUNCE_MS = 200;

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
    this.keyboard();
    window.addEventListener("hashchange", () => this.navigate());
    let from = null;
    try {
      const cluster = await this.api.refreshCluster();
      // The feed starts with the last hundred or so commands' events.
      const start = Math.max((cluster.audit_start || 1) - 1, (cluster.applied_index || 0) - 100, 0);
      from = String(start);
    } catch (error) {
      this.toast(`The master does not answer: ${error.message}`);
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
    await this.navigate();
  }

  event(event) {
    this.events.push(event);
    if (this.events.length > EVENT_MEMORY) this.events.splice(0, this.events.length - EVENT_MEMORY);
    this.status();
    if (this.onLiveEvent) this.onLiveEvent(event);
    if (this.view && this.view.topics.includes(event.topic)) this.reloadSoon();
  }

  reloadSoon() {
    clearTimeout(this.pending);
    this.pending = setTimeout(() => this.load(false), RELOAD_DEBOUNCE_MS);
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
    await this.load(true);
  }

  async load(fresh) {
    if (this.loading) {
      // One more after the one in flight: the events it missed.
      this.again = true;
      return;
    }
    this.loading = true;
    const generation = ++this.generation;
    const { view, params } = this.route;
    const ctx = { api: this.api, app: this, params };
    try {
      if (fresh) this.main.setAttribute("aria-busy", "true");
      const data = await view.load(ctx);
      if (generation !== this.generation || view !== this.view) return;
      const active = document.activeElement;
      const focused = active && active.id;
      const caret = active && typeof active.selectionStart === "number" ? [active.selectionStart, active.selectionEnd] : null;
      const scroll = window.scrollY;
      if (view !== views.events) this.onLiveEvent = null;
      const content = view.render(ctx, data);
      this.main.replaceChildren(content);
      for (const [key, value] of this.memories) {
        if (key === `logs:${params[0]}` && view === views.tasks) value.start();
      }
      const refocus = focused && document.getElementById(focused);
      if (refocus) {
        refocus.focus({ preventScroll: true });
        if (caret && typeof refocus.setSelectionRange === "function") {
          try { refocus.setSelectionRange(caret[0], caret[1]); } catch (_) { /* not a text field */ }
        }
      }
      if (!fresh) window.scrollTo(0, scroll);
    } catch (error) {
      if (fresh) this.main.replaceChildren(views.h("h1", {}, view.title), views.h("p", { class: "empty" }, `Could not load: ${error.message}`));
      else this.toast(`Could not refresh: ${error.message}`);
    } finally {
      this.main.removeAttribute("aria-busy");
      this.loading = false;
      if (this.again) {
        this.again = false;
        this.reloadSoon();
      }
    }
  }

  status() {
    const conn = document.getElementById("conn");
    const role = this.api.cluster ? this.api.cluster.role : "";
    const texts = {
      connecting: `connecting to ${this.api.current}…`,
      live: `live from ${this.api.current}${role ? ` (${role})` : ""}`,
      down: `${this.api.current} stopped answering; looking for another master…`,
      gap: `${this.api.current}: ${this.streamDetail}`,
    };
    conn.textContent = texts[this.streamState] || this.streamState;
    conn.className = `conn ${this.streamState === "live" ? "live" : this.streamState === "down" ? "down" : ""}`;
    const cursor = this.stream && this.stream.cursor;
    document.getElementById("cursor").textContent = cursor ? `cursor ${cursor}` : "";
    const auth = document.getElementById("auth-state");
    if (this.api.auth === "on") {
      auth.textContent = this.api.token ? "auth is on · token set" : "auth is on · enter a token";
      auth.className = "on";
    } else {
      auth.textContent = "auth is off";
      auth.className = "";
    }
  }

  authForm() {
    const form = document.getElementById("auth");
    const input = document.getElementById("token");
    input.value = this.api.token;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.api.setToken(input.value.trim());
      this.load(true);
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
      dialog.onclose = () => done(false);
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
