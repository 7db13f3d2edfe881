// Talking to the masters: which one this page follows, moving to another when it stops
// answering, the token, and the event stream resumed from its cursor.

const TOKEN_KEY = "corral.token";
/// How long a master may stay silent on the event stream (it sends a keep-alive every 15 s).
const STREAM_SILENCE_MS = 40000;
const PROBE_TIMEOUT_MS = 2500;

export class ApiError extends Error {
  constructor(status, body, url) {
    const message = (body && (body.message || body.error)) || `HTTP ${status}`;
    super(body && body.field ? `${body.field}: ${message}` : message);
    this.status = status;
    this.body = body;
    this.url = url;
  }
}

/// What to tell the user when a master refuses them: no token, or which problem with it.
function refusalText(error, token) {
  if (error.status === 403) return `This token may not read this: ${error.message}`;
  if (!token) return "This cluster enforces access control: enter a token (crl_…) in the field at the top right.";
  return `The token was not accepted: ${error.message.replace(/^not authorized: /, "")}`;
}

/// Whether a failure means the master did not answer at all (as opposed to answering "no").
function unreachable(error) {
  return error instanceof TypeError || error.name === "AbortError" || error.name === "TimeoutError";
}

export class Api {
  constructor() {
    this.current = location.host;
    this.masters = [location.host];
    this.leader = null;
    this.cluster = null;
    this.token = sessionStorage.getItem(TOKEN_KEY) || "";
    // The mode `/corral/v1/auth` names (off, permissive, enforce); null until a master says.
    this.auth = null;
    // Why the last request with the token was refused (a 401 or 403), until a new token.
    this.refusal = null;
    this.tokenWaiters = [];
    this.onChange = () => {};
    this.switching = null;
  }

  setToken(token) {
    this.token = token;
    this.refusal = null;
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    for (const resolve of this.tokenWaiters.splice(0)) resolve();
    this.onChange();
  }

  /// Resolves when the user gives a (new) token.
  nextToken() {
    return new Promise((resolve) => this.tokenWaiters.push(resolve));
  }

  /// Whether requests are refused without a token.
  needsToken() {
    return this.auth === "enforce";
  }

  /// The auth mode, from the one route every master answers without credentials.
  async readAuth() {
    const answer = await this.json("/corral/v1/auth");
    this.auth = answer.mode;
    this.onChange();
    return answer;
  }

  url(address, path) {
    return `${location.protocol}//${address}${path}`;
  }

  headers(extra = {}) {
    const headers = { ...extra };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return headers;
  }

  /// One request. Reads go to the master this page follows; writes to the leader it last
  /// saw. When the master does not answer, the page moves to another and asks once more.
  async request(path, { method = "GET", body, write = false, accept = "application/json" } = {}) {
    for (let attempt = 0; attempt < 2; attempt++) {
      const address = write && this.leader ? this.leader : this.current;
      const url = this.url(address, path);
      // No cookies or cached Basic passwords: the token travels in a header, and a request
      // without credentials keeps a 401 from opening the browser's password dialog.
      const init = { method, headers: this.headers({ Accept: accept }), credentials: "omit" };
      if (body !== undefined) {
        init.body = typeof body === "string" ? body : JSON.stringify(body);
        init.headers["Content-Type"] = "application/json";
      }
      let response;
      try {
        response = await fetch(url, init);
      } catch (error) {
        if (!unreachable(error) || attempt > 0) throw error;
        if (address === this.current) {
          await this.failover(address);
        } else {
          // The leader this page knew is gone: ask the master it follows who leads now.
          this.leader = null;
          await this.refreshCluster().catch(() => null);
        }
        continue;
      }
      if (!response.ok) {
        let detail = null;
        try { detail = await response.json(); } catch (_) { detail = null; }
        const error = new ApiError(response.status, detail, url);
        if (response.status === 401 || (response.status === 403 && !write)) {
          // A master that refuses reads enforces access control, whatever it said before.
          if (response.status === 401) this.auth = "enforce";
          this.refusal = refusalText(error, this.token);
          this.onChange();
        }
        throw error;
      }
      return response;
    }
    throw new Error(`no master answered ${path}`);
  }

  async json(path, options) {
    const response = await this.request(path, options);
    return response.json();
  }

  /// The text of a JSON-lines or plain answer.
  async text(path, options) {
    const response = await this.request(path, options);
    return response.text();
  }

  /// `/corral/v1/cluster` from the master this page follows: members, leader, log position.
  async refreshCluster() {
    const cluster = await this.json("/corral/v1/cluster");
    this.cluster = cluster;
    const addresses = cluster.members.map((member) => member.address);
    if (addresses.length) this.masters = addresses;
    this.leader = cluster.leader_address || null;
    this.onChange();
    return cluster;
  }

  /// Moves to the first other master that answers; `dead` is the one that did not.
  failover(dead) {
    if (this.switching) return this.switching;
    this.switching = (async () => {
      const candidates = this.masters.filter((address) => address !== dead);
      if (dead === this.leader) this.leader = null;
      for (let round = 0; round < 20; round++) {
        for (const address of candidates) {
          try {
            const response = await fetch(this.url(address, "/corral/v1/cluster"), {
              headers: this.headers({ Accept: "application/json" }),
              credentials: "omit",
              signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
            });
            if (!response.ok) continue;
            const cluster = await response.json();
            this.current = address;
            this.cluster = cluster;
            this.leader = cluster.leader_address || null;
            this.onChange();
            return address;
          } catch (_) {
            // The next one.
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      throw new Error("no master answers");
    })().finally(() => { this.switching = null; });
    return this.switching;
  }
}

/// The native event stream as Server-Sent Events, read with fetch so that it can carry the
/// token, and resumed from the last cursor (`Last-Event-ID`) on whichever master answers.
export class EventStream {
  constructor(api, { onEvent, onState }) {
    this.api = api;
    this.onEvent = onEvent;
    this.onState = onState;
    this.cursor = null;
    this.controller = null;
    this.stopped = false;
  }

  start(from) {
    this.cursor = from;
    this.loop();
  }

  async loop() {
    let delay = 250;
    while (!this.stopped) {
      const address = this.api.current;
      try {
        this.onState("connecting", address);
        await this.follow(address);
        delay = 250;
      } catch (error) {
        if (this.stopped) return;
        if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
          // Another master will say the same: wait for another token.
          this.onState("refused", address, this.api.refusal);
          await this.api.nextToken();
          continue;
        }
        if (error instanceof ApiError && error.status === 410 && error.body && error.body.oldest) {
          // Older than retained: say so, then carry on from the oldest still there.
          this.onState("gap", address, `events before ${error.body.oldest} are no longer retained`);
          this.cursor = error.body.oldest;
          continue;
        }
        this.onState("down", address, String(error.message || error));
        try {
          await this.api.failover(address);
        } catch (_) {
          await new Promise((resolve) => setTimeout(resolve, delay));
          delay = Math.min(delay * 2, 4000);
        }
      }
    }
  }

  async follow(address) {
    const controller = new AbortController();
    this.controller = controller;
    const headers = this.api.headers({ Accept: "text/event-stream" });
    if (this.cursor) headers["Last-Event-ID"] = this.cursor;
    const url = this.api.url(address, "/corral/v1/events?format=sse");
    const response = await fetch(url, { headers, signal: controller.signal, credentials: "omit" });
    if (!response.ok) {
      let body = null;
      try { body = await response.json(); } catch (_) { body = null; }
      const error = new ApiError(response.status, body, url);
      if (response.status === 401 || response.status === 403) {
        if (response.status === 401) this.api.auth = "enforce";
        this.api.refusal = refusalText(error, this.api.token);
      }
      throw error;
    }
    this.onState("live", address);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let watchdog = setTimeout(() => controller.abort(), STREAM_SILENCE_MS);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error("the event stream ended");
        clearTimeout(watchdog);
        watchdog = setTimeout(() => controller.abort(), STREAM_SILENCE_MS);
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          this.frame(frame);
        }
      }
    } finally {
      clearTimeout(watchdog);
    }
  }

  frame(frame) {
    let id = null;
    let kind = "message";
    const data = [];
    for (const line of frame.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") kind = value;
      else if (field === "data") data.push(value);
    }
    if (kind === "disconnected") throw new Error(`the master ended the stream: ${data.join("\n")}`);
    if (!data.length) return;
    const payload = JSON.parse(data.join("\n"));
    if (id) this.cursor = id;
    this.onEvent(payload);
  }
}
