// The pages. Each view has `load(ctx)` (fetches what it shows), `render(ctx, data)` (builds
// its DOM from that, with text nodes only: ids and names are never parsed as HTML) and
// `topics` (the event topics after which it loads again).

export const TOPICS = ["agent", "framework", "offer", "task", "role", "maintenance", "cluster", "service"];
const TERMINAL = new Set(["TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_LOST"]);
const LOCAL = "consistency=local";
/// How often a page showing apps that wait to launch reads `/v2/queue` again: why offers
/// were not used is the leader's memory, not an event.
const QUEUE_REFRESH_MS = 2000;

/// An element: `h("a", {href: "#/"}, "text", child)`. `on*` props are listeners.
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (key === "class") element.className = value;
    // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    else if (key === "style") element.style.cssText = value;
    else if (key in element && typeof value !== "string") element[key] = value;
    else element.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const enc = encodeURIComponent;

function link(route, text) {
  return h("a", { href: `#/${route}` }, text);
}

function num(value, digits = 2) {
  if (value === undefined || value === null || Number.isNaN(value)) return "–";
  return Number.isInteger(value) ? String(value) : value.toFixed(digits);
}

function mib(value) {
  if (value === undefined || value === null) return "–";
  return value >= 1024 ? `${(value / 1024).toFixed(1)} GiB` : `${num(value, 0)} MiB`;
}

function resourcesText(resources) {
  if (!resources) return "–";
  const parts = [];
  if (resources.cpus !== undefined) parts.push(`cpus ${num(resources.cpus)}`);
  if (resources.gpus) parts.push(`gpus ${num(resources.gpus)}`);
  if (resources.mem !== undefined) parts.push(`mem ${mib(resources.mem)}`);
  if (resources.disk !== undefined) parts.push(`disk ${mib(resources.disk)}`);
  if (resources.ports) parts.push(`ports ${resources.ports}`);
  return parts.join(" · ") || "none";
}

function when(epochSeconds) {
  if (!epochSeconds) return "–";
  const date = new Date(epochSeconds * 1000);
  return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function stateBadge(state) {
  const text = (state || "?").replace(/^TASK_/, "");
  let tone = "";
  if (state === "TASK_RUNNING") tone = "ok";
  else if (["TASK_FAILED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED", "TASK_GONE"].includes(state)) tone = "bad";
  else if (["TASK_STAGING", "TASK_STARTING", "TASK_KILLING", "TASK_UNREACHABLE"].includes(state)) tone = "warn";
  return h("span", { class: `badge ${tone}` }, text);
}

function meter(used, total, label) {
  const share = total > 0 ? Math.min(1, used / total) : 0;
  return h("div", { class: "meter", role: "meter", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.round(share * 100)), "aria-label": label },
    h("span", { style: `width:${(share * 100).toFixed(1)}%` }));
}

function table(headers, rows, empty = "nothing here") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((header) => {
      const [text, cls] = Array.isArray(header) ? header : [header, undefined];
      return h("th", { class: cls, scope: "col" }, text);
    }))),
    h("tbody", {}, rows));
}

function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.filter(Boolean).map(([key, value]) => [h("dt", {}, key), h("dd", {}, value)]));
}

function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

/// Every task the v0 state knows, each once, with its framework id.
export function allTasks(state) {
  const tasks = [];
  for (const framework of [...(state.frameworks || []), ...(state.completed_frameworks || [])]) {
    for (const key of ["tasks", "unreachable_tasks", "completed_tasks"]) {
      for (const task of framework[key] || []) tasks.push({ ...task, framework_id: task.framework_id || framework.id });
    }
  }
  const seen = new Set();
  return tasks.filter((task) => (seen.has(task.id) ? false : (seen.add(task.id), true)));
}

function lastStatusTime(task) {
  const statuses = task.statuses || [];
  return statuses.length ? statuses[statuses.length - 1].timestamp : undefined;
}

function taskRow(task) {
  return h("tr", { "data-task": task.id },
    h("td", {}, link(`tasks/${enc(task.id)}`, task.id)),
    h("td", {}, task.name || ""),
    h("td", {}, stateBadge(task.state)),
    h("td", {}, link(`frameworks/${enc(task.framework_id)}`, task.framework_id)),
    h("td", {}, task.slave_id ? link(`agents/${enc(task.slave_id)}`, task.slave_id) : "–"),
    h("td", { class: "mono" }, when(lastStatusTime(task))));
}

const TASK_HEADERS = ["Task", "Name", "State", "Framework", "Agent", "Last status"];

function agentMode(agent) {
  if (agent.drain_info && agent.drain_info.state) return agent.drain_info.state;
  if (agent.deactivated) return "DEACTIVATED";
  if (agent.active === false) return "INACTIVE";
  return "ACTIVE";
}

function modeBadge(mode) {
  const tone = mode === "ACTIVE" ? "ok" : mode === "INACTIVE" ? "bad" : "warn";
  return h("span", { class: `badge ${tone}` }, mode);
}

/// Task counts by state summed over `/master/state-summary`'s agents (`TASK_RUNNING: 3`…).
function summaryCounts(agents) {
  const byState = new Map();
  for (const agent of agents) {
    for (const [key, value] of Object.entries(agent)) {
      if (key.startsWith("TASK_") && typeof value === "number") byState.set(key, (byState.get(key) || 0) + value);
    }
  }
  return byState;
}

/// Adds the operator API's drain state to the agents that are deactivated (a drained agent
/// is); when none is, the operator API's whole agent list is not read.
async function withDrains(api, agents) {
  if (!agents.some((agent) => agent.deactivated)) return;
  const operator = await api.json(`/api/v1?${LOCAL}`, { method: "POST", body: { type: "GET_AGENTS" } });
  const drains = new Map();
  for (const agent of (operator.get_agents || {}).agents || []) {
    if (agent.drain_info) drains.set(agent.agent_info.id.value, agent.drain_info);
  }
  for (const agent of agents) {
    if (drains.has(agent.id)) agent.drain_info = drains.get(agent.id);
  }
}

// ---------------------------------------------------------------------------------------

export const overview = {
  title: "Overview",
  topics: TOPICS,
  async load({ api }) {
    // The summary: agents and frameworks with task counts, not every task.
    const [cluster, state, roles] = await Promise.all([
      api.refreshCluster(),
      api.json(`/master/state-summary?${LOCAL}`),
      api.json(`/master/roles?${LOCAL}`),
    ]);
    // Only the leader knows how far behind each member is.
    let members = cluster;
    if (cluster.role !== "leader" && cluster.leader_address) {
      try {
        members = await (await fetch(api.url(cluster.leader_address, "/corral/v1/cluster"), { headers: api.headers(), credentials: "omit" })).json();
      } catch (_) {
        members = cluster;
      }
    }
    return { cluster, members, state, roles };
  },
  render({ api }, { cluster, members, state, roles }) {
    const agents = state.slaves || [];
    const frameworks = state.frameworks || [];
    const byState = summaryCounts(agents);
    let live = 0;
    let known = 0;
    for (const [name, count] of byState) {
      known += count;
      if (!TERMINAL.has(name)) live += count;
    }
    const total = { cpus: 0, mem: 0, disk: 0 };
    const used = { cpus: 0, mem: 0, disk: 0 };
    for (const agent of agents) {
      for (const key of Object.keys(total)) {
        total[key] += (agent.resources || {})[key] || 0;
        used[key] += (agent.used_resources || {})[key] || 0;
      }
    }
    const memberRows = (members.members || []).map((member) => h("tr", { "data-member": member.address },
      h("td", { class: "num" }, member.node_id),
      h("td", { class: "mono" }, member.address),
      h("td", {}, member.leader ? h("span", { class: "badge leader" }, "leader") : member.voter ? "voter" : "learner"),
      h("td", { class: "num", "data-matched": member.address }, member.matched_index ?? "–"),
      h("td", { class: "num", "data-lag": member.address }, member.lag ?? "–"),
      h("td", {}, member.address === api.current ? "this page follows it" : "")));
    const shareRows = (roles.roles || []).map((role) => {
      const allocated = role.allocated || role.resources || {};
      const shares = Object.keys(total).map((key) => (total[key] > 0 ? (allocated[key] || 0) / total[key] : 0));
      const dominant = Math.max(0, ...shares);
      return { role, allocated, dominant };
    }).sort((a, b) => b.dominant - a.dominant || a.role.name.localeCompare(b.role.name))
      .map(({ role, allocated, dominant }) => h("tr", { "data-role": role.name },
        h("td", {}, role.name),
        h("td", { class: "num" }, num(role.weight ?? 1)),
        h("td", {}, resourcesText(allocated)),
        h("td", { class: "num", "data-share": role.name }, `${(dominant * 100).toFixed(1)}%`),
        h("td", {}, meter(dominant, 1, `dominant share of ${role.name}`))));
    const stateRows = [...byState.entries()].filter(([, count]) => count > 0).sort().map(([name, count]) => h("tr", {},
      h("td", {}, stateBadge(name)), h("td", { class: "num", "data-state-count": name }, count)));
    return h("div", {},
      h("h1", {}, "Cluster overview"),
      h("div", { class: "grid" },
        h("section", { class: "card", "aria-labelledby": "c-log" },
          h("h2", { id: "c-log" }, "Replicated log"),
          kv([
            ["This master", `${cluster.node_id} (${cluster.role})`],
            ["Leader", cluster.leader_address || "none elected"],
            ["Term", cluster.term],
            ["Applied index", h("span", { id: "applied-index" }, cluster.applied_index ?? "–")],
            ["Commit index", cluster.commit_index ?? "–"],
            ["Oldest retained", cluster.audit_start ?? "–"],
          ])),
        h("section", { class: "card" },
          h("h2", {}, "Agents"), h("div", { class: "big", id: "agent-count" }, agents.length),
          h("p", { class: "muted" }, `${agents.filter((agent) => agentMode(agent) === "ACTIVE").length} active`)),
        h("section", { class: "card" },
          h("h2", {}, "Frameworks"), h("div", { class: "big", id: "framework-count" }, frameworks.length),
          h("p", { class: "muted" }, `${frameworks.filter((framework) => framework.active).length} connected`)),
        h("section", { class: "card" },
          h("h2", {}, "Tasks"), h("div", { class: "big", id: "task-count" }, live),
          h("p", { class: "muted" }, `live, of ${known} known`))),
      h("div", { class: "two" },
        h("section", {},
          h("h2", {}, "Masters"),
          table(["Id", "Address", "Role", ["Matched index", "num"], ["Lag", "num"], ""], memberRows)),
        h("section", {},
          h("h2", {}, "Resources used of total"),
          table(["Resource", ["Used", "num"], ["Total", "num"], "Share"], ["cpus", "mem", "disk"].map((key) => h("tr", {},
            h("td", {}, key),
            h("td", { class: "num", "data-used": key }, key === "cpus" ? num(used[key]) : mib(used[key])),
            h("td", { class: "num", "data-total": key }, key === "cpus" ? num(total[key]) : mib(total[key])),
            h("td", {}, meter(used[key], total[key], `${key} used`))))))),
      h("div", { class: "two" },
        h("section", {}, h("h2", {}, "Tasks by state"), table(["State", ["Count", "num"]], stateRows, "no tasks")),
        h("section", {}, h("h2", {}, "Dominant resource shares by role"),
          table(["Role", ["Weight", "num"], "Allocated", ["Share", "num"], ""], shareRows, "no roles"))));
  },
};

// ---------------------------------------------------------------------------------------

export const agents = {
  title: "Agents",
  topics: ["agent", "task", "maintenance"],
  async load({ api, params }) {
    // The list needs the agents and their task counts (the summary); one agent's page its
    // tasks too. The v0 state says only "deactivated"; the operator API says whether that
    // is a drain.
    const id = params[0];
    const state = await api.json(id ? `/master/state?${LOCAL}` : `/master/state-summary?${LOCAL}`);
    await withDrains(api, state.slaves || []);
    return { state, id };
  },
  render(ctx, { state, id }) {
    const list = state.slaves || [];
    if (id) return agentDetail(ctx, state, list.find((agent) => agent.id === id), id);
    const liveOn = (agent) => [...summaryCounts([agent])].reduce((sum, [name, count]) => sum + (TERMINAL.has(name) ? 0 : count), 0);
    const rows = list.map((agent) => h("tr", { "data-agent": agent.id },
      h("td", {}, link(`agents/${enc(agent.id)}`, agent.id)),
      h("td", {}, agent.hostname),
      h("td", {}, modeBadge(agentMode(agent))),
      h("td", { class: "num" }, `${num((agent.used_resources || {}).cpus || 0)} / ${num((agent.resources || {}).cpus)}`),
      h("td", { class: "num" }, `${mib((agent.used_resources || {}).mem || 0)} / ${mib((agent.resources || {}).mem)}`),
      h("td", { class: "num" }, liveOn(agent)),
      h("td", {}, Object.entries(agent.attributes || {}).map(([key, value]) => `${key}:${value}`).join(", "))));
    return h("div", {},
      h("h1", {}, `Agents (${list.length})`),
      table(["Agent", "Hostname", "Mode", ["CPUs used / total", "num"], ["Memory used / total", "num"], ["Tasks", "num"], "Attributes"], rows, "no agents registered"));
  },
};

function operatorCall(ctx, type, key, agentId, question) {
  return async () => {
    if (!(await ctx.app.confirm(question))) return;
    try {
      await ctx.api.request("/api/v1", { method: "POST", write: true, body: { type, [key]: { agent_id: { value: agentId } } } });
      ctx.app.toast(`${type} sent for ${agentId}`, "info");
    } catch (error) {
      ctx.app.toast(`${type} failed: ${error.message}`);
    }
  };
}

function agentDetail(ctx, state, agent, id) {
  if (!agent) return h("div", {}, h("h1", {}, `Agent ${id}`), h("p", { class: "empty" }, "This agent is not registered (any more)."));
  const tasks = allTasks(state).filter((task) => task.slave_id === agent.id);
  const mode = agentMode(agent);
  const free = {};
  for (const key of ["cpus", "mem", "disk"]) free[key] = ((agent.resources || {})[key] || 0) - ((agent.used_resources || {})[key] || 0) - ((agent.offered_resources || {})[key] || 0);
  return h("div", {},
    h("h1", {}, `Agent ${agent.id}`),
    h("div", { class: "toolbar" },
      h("button", { id: "agent-drain", onclick: operatorCall(ctx, "DRAIN_AGENT", "drain_agent", agent.id, `Drain agent ${agent.id} (${agent.hostname})? Its tasks will be killed and it gets no new offers.`) }, "Drain"),
      h("button", { id: "agent-deactivate", onclick: operatorCall(ctx, "DEACTIVATE_AGENT", "deactivate_agent", agent.id, `Deactivate agent ${agent.id}? It gets no new offers; its tasks keep running.`) }, "Deactivate"),
      h("button", { id: "agent-reactivate", onclick: operatorCall(ctx, "REACTIVATE_AGENT", "reactivate_agent", agent.id, `Reactivate agent ${agent.id}?`) }, "Reactivate")),
    h("div", { class: "two" },
      h("section", {}, h("h2", {}, "Agent"), kv([
        ["Hostname", agent.hostname],
        ["Address", h("code", {}, agent.pid || "–")],
        ["Mode", h("span", { id: "agent-mode" }, modeBadge(mode))],
        ["Registered", when(agent.registered_time)],
        ["Attributes", Object.entries(agent.attributes || {}).map(([key, value]) => `${key}:${value}`).join(", ") || "none"],
      ])),
      h("section", {}, h("h2", {}, "Resources"), kv([
        ["Total", resourcesText(agent.resources)],
        ["Used", resourcesText(agent.used_resources)],
        ["Offered", resourcesText(agent.offered_resources)],
        ["Free", resourcesText(free)],
      ]))),
    h("h2", {}, `Tasks (${tasks.length})`),
    table(TASK_HEADERS, tasks.map(taskRow), "no tasks on this agent"));
}

// ---------------------------------------------------------------------------------------

export const frameworks = {
  title: "Frameworks",
  topics: ["framework", "offer", "task"],
  async load({ api, params }) {
    const state = await api.json(`/master/state?${LOCAL}`);
    return { state, id: params[0] };
  },
  render(ctx, { state, id }) {
    const list = [...(state.frameworks || []), ...(state.completed_frameworks || [])];
    if (id) return frameworkDetail(ctx, state, list.find((framework) => framework.id === id), id);
    const rows = list.map((framework) => h("tr", { "data-framework": framework.id },
      h("td", {}, link(`frameworks/${enc(framework.id)}`, framework.id)),
      h("td", {}, framework.name),
      h("td", {}, (framework.roles || [framework.role]).filter(Boolean).join(", ")),
      h("td", {}, framework.active ? h("span", { class: "badge ok" }, "connected") : h("span", { class: "badge warn" }, "disconnected")),
      h("td", { class: "num" }, (framework.tasks || []).length),
      h("td", { class: "num" }, (framework.offers || []).length),
      h("td", {}, resourcesText(framework.used_resources))));
    return h("div", {},
      h("h1", {}, `Frameworks (${list.length})`),
      table(["Framework", "Name", "Roles", "Connection", ["Tasks", "num"], ["Offers", "num"], "Using"], rows, "no frameworks"));
  },
};

function frameworkDetail(ctx, state, framework, id) {
  if (!framework) return h("div", {}, h("h1", {}, `Framework ${id}`), h("p", { class: "empty" }, "No such framework."));
  const tasks = allTasks(state).filter((task) => task.framework_id === framework.id);
  // The answer outlives the reloads that events cause, until asked again.
  const asked = ctx.app.memory(`why:${framework.id}`, () => ({ answer: null, error: null, asking: false }));
  const why = h("div", { id: "why-no-offers", "aria-live": "polite" }, explanation(asked));
  const explain = async () => {
    asked.asking = true;
    why.replaceChildren(explanation(asked));
    try {
      // The leader's allocator answers (a follower would redirect, and a redirect across
      // origins drops the token).
      asked.answer = await ctx.api.json(`/corral/v1/allocation/explain?framework_id=${enc(framework.id)}`, { write: true });
      asked.error = null;
    } catch (error) {
      asked.answer = null;
      asked.error = error.message;
    }
    asked.asking = false;
    // The view may have been replaced meanwhile: fill whichever panel is on the page.
    const panel = document.getElementById("why-no-offers");
    if (panel) panel.replaceChildren(explanation(asked));
  };
  return h("div", {},
    h("h1", {}, `Framework ${framework.name || ""} `, h("code", {}, framework.id)),
    h("div", { class: "two" },
      h("section", {}, kv([
        ["Name", framework.name],
        ["Roles", (framework.roles || [framework.role]).filter(Boolean).join(", ")],
        ["Connection", framework.active ? "connected" : "disconnected"],
        ["User", framework.user || "–"],
        ["Registered", when(framework.registered_time)],
        ["Using", resourcesText(framework.used_resources)],
        ["Offered", resourcesText(framework.offered_resources)],
      ])),
      h("section", {},
        h("button", { id: "explain-offers", onclick: explain }, "Why no offers?"),
        why)),
    h("h2", {}, `Offers (${(framework.offers || []).length})`),
    table(["Offer", "Agent", "Resources"], (framework.offers || []).map((offer) => h("tr", {},
      h("td", { class: "mono" }, offer.id),
      h("td", {}, link(`agents/${enc(offer.slave_id)}`, offer.slave_id)),
      h("td", {}, resourcesText(offer.resources)))), "no outstanding offers"),
    h("h2", {}, `Tasks (${tasks.length})`),
    table(TASK_HEADERS, tasks.map(taskRow), "no tasks"));
}

/// One allocator reason as a sentence.
function reasonText(reason) {
  switch (reason.kind) {
    case "offered": return "Offers were made in the last cycle.";
    case "not_yet_considered": return "The allocator has not run since this framework appeared.";
    case "disconnected": return "The framework is not connected, so nothing is offered to it.";
    case "not_subscribed_to_leader": return "The framework has not subscribed to this leader since it took over, so nothing is offered to it until it does.";
    case "suppressed": return `The framework suppressed offers for role ${reason.role}.`;
    case "decline_filters": return `${reason.agents} agent(s) skipped: the framework declined them and its filter has not expired.`;
    case "offer_cap_reached": return `The framework reached the most offers it may get in one cycle (${reason.cap}).`;
    case "quota_limit_reached": return `The role (or an ancestor) reached its quota limit on ${reason.agents} agent(s).`;
    case "held_for_other_roles_quota": return `Resources on ${reason.agents} agent(s) were held back for other roles' unmet quota guarantees.`;
    case "resources_too_small": return `${reason.agents} agent(s) had free resources below every minimum allocatable quantity.`;
    case "outranked_or_no_free_resources": return "Eligible, but frameworks or roles with a lower share took every free agent first.";
    case "no_frameworks": return "No connected framework is subscribed to the role.";
    default: return reason.kind;
  }
}

function explanation(asked) {
  if (asked.asking) return h("p", { class: "muted" }, "Asking the allocator…");
  if (asked.error) return h("p", { class: "empty" }, `No explanation: ${asked.error}`);
  const answer = asked.answer;
  if (!answer) return h("p", { class: "muted" }, "Ask the leader's allocator what its last cycle did for this framework.");
  return h("div", {},
    h("h2", {}, "The allocator's last cycle for this framework"),
    kv([
      ["Cycle", cycleTime(answer.cycle_at)],
      ["Offers made", answer.offers_made],
      ["Declined agents skipped", answer.agents_filtered_by_declines],
      ["Refusal filters", answer.active_filters],
    ]),
    h("ul", { id: "why-reasons" }, (answer.reasons || []).map((reason) => h("li", { "data-reason": reason.kind }, reasonText(reason)))),
    table(["Role", ["Dominant share", "num"], ["Rank", "num"], "Suppressed", "Allocated"], (answer.roles || []).map((standing) => h("tr", {},
      h("td", {}, standing.role),
      h("td", { class: "num" }, `${(standing.dominant_share * 100).toFixed(1)}%`),
      h("td", { class: "num" }, standing.rank ? `${standing.rank} of ${standing.eligible_frameworks_in_role}` : "–"),
      h("td", {}, standing.suppressed ? "yes" : "no"),
      h("td", {}, quantitiesText(standing.allocation)))), "no roles"));
}

/// The allocator's timestamps are nanoseconds since the epoch.
function cycleTime(at) {
  if (at === null || at === undefined) return "none yet";
  if (typeof at === "number") return new Date(at / 1e6).toISOString().replace("T", " ").replace(/Z$/, "Z");
  return String(at).replace("T", " ");
}

/// The allocator's quantities: `[[name, thousandths], …]`.
function quantitiesText(quantities) {
  if (!Array.isArray(quantities) || !quantities.length) return "none";
  return quantities.map(([name, milli]) => {
    const value = milli / 1000;
    return ["mem", "disk"].includes(name) ? `${name} ${mib(value)}` : `${name} ${num(value)}`;
  }).join(" · ");
}

// ---------------------------------------------------------------------------------------

export const tasks = {
  title: "Tasks",
  topics: ["task"],
  async load({ api, params }) {
    const id = params[0];
    if (!id) return { state: await api.json(`/master/state?${LOCAL}`) };
    const [state, history] = await Promise.all([
      api.json(`/master/state?${LOCAL}`),
      api.json(`/corral/v1/history?task=${enc(id)}`).catch((error) => ({ error: error.message })),
    ]);
    return { state, id, history };
  },
  render(ctx, data) {
    if (data.id) return taskDetail(ctx, data);
    const all = allTasks(data.state).sort((a, b) => (lastStatusTime(b) || 0) - (lastStatusTime(a) || 0));
    const filter = ctx.app.memory("task-filter", () => ({ text: "", state: "" }));
    const states = [...new Set(all.map((task) => task.state))].sort();
    const body = h("tbody");
    const count = h("span", { id: "task-shown" });
    const apply = () => {
      const text = filter.text.toLowerCase();
      const shown = all.filter((task) => (!filter.state || task.state === filter.state)
        && (!text || [task.id, task.name, task.slave_id, task.framework_id].some((value) => (value || "").toLowerCase().includes(text))));
      body.replaceChildren(...shown.slice(0, 500).map(taskRow));
      count.textContent = `${shown.length} of ${all.length}`;
    };
    const input = h("input", { id: "task-filter", type: "search", placeholder: "id, name, agent, framework", value: filter.text, "aria-label": "Filter tasks", oninput: (event) => { filter.text = event.target.value; apply(); } });
    const select = h("select", { id: "task-state", "aria-label": "Task state", onchange: (event) => { filter.state = event.target.value; apply(); } },
      h("option", { value: "" }, "any state"), states.map((state) => h("option", { value: state, selected: state === filter.state }, state)));
    apply();
    return h("div", {},
      h("h1", {}, "Tasks ", count),
      h("div", { class: "toolbar" }, h("label", { for: "task-filter" }, "Filter"), input, select,
        h("span", { class: "muted" }, "Press / to filter")),
      h("table", {}, h("thead", {}, h("tr", {}, TASK_HEADERS.map((header) => h("th", { scope: "col" }, header)))), body));
  },
};

/// `Running` (a state as the log's events spell it) as Mesos spells it: `TASK_RUNNING`.
function mesosState(state) {
  return `TASK_${state.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase()}`;
}

function commandSummary(record) {
  const events = (record.events || []).map((event) => {
    const body = event.event && typeof event.event === "object" ? Object.values(event.event)[0] : null;
    const state = body && body.status && body.status.state;
    return typeof state === "string" ? `${event.kind} ${mesosState(state)}` : event.kind;
  }).join(", ");
  return events ? `${record.command} → ${events}` : record.command;
}

function taskDetail(ctx, { state, id, history }) {
  const task = allTasks(state).find((candidate) => candidate.id === id);
  const logs = ctx.app.memory(`logs:${id}`, () => new LogPanel(ctx.api, id));
  logs.task = task;
  const historyRows = Array.isArray(history) ? history.map((record) => h("tr", {},
    h("td", { class: "mono" }, record.cursor),
    h("td", { class: "mono" }, (record.time || "").replace("T", " ")),
    h("td", {}, record.actor.id ? `${record.actor.kind} ${record.actor.id}` : record.actor.kind),
    h("td", {}, commandSummary(record)),
    h("td", {}, record.outcome === "accepted" ? record.outcome : h("span", { class: "badge bad", title: record.reason || "" }, record.outcome)))) : [];
  return h("div", {},
    h("h1", {}, "Task ", h("code", {}, id)),
    task ? h("div", { class: "two" },
      h("section", {}, kv([
        ["State", h("span", { id: "task-state-now" }, stateBadge(task.state))],
        ["Name", task.name || "–"],
        ["Framework", link(`frameworks/${enc(task.framework_id)}`, task.framework_id)],
        ["Agent", task.slave_id ? link(`agents/${enc(task.slave_id)}`, task.slave_id) : "–"],
        ["Resources", resourcesText(task.resources)],
        ["Last status", when(lastStatusTime(task))],
      ])),
      h("section", {}, h("h2", {}, "Statuses"), table(["State", "Time", "Message"], (task.statuses || []).map((status) => h("tr", {},
        h("td", {}, stateBadge(status.state)), h("td", { class: "mono" }, when(status.timestamp)), h("td", {}, status.message || "")))))) :
      h("p", { class: "empty" }, "This master's state does not hold this task (any more); its history is below."),
    h("h2", {}, "Sandbox"),
    logs.element,
    h("h2", {}, "History from the audit log"),
    Array.isArray(history) ? table(["Cursor", "Time", "Actor", "Command → events", "Outcome"], historyRows, "no history")
      : h("p", { class: "empty" }, `No history: ${history.error}`));
}

/// A task's stdout or stderr read through the master's proxy of the agent's files API,
/// followed (read from the last offset) once a second while it is on the page.
class LogPanel {
  constructor(api, taskId) {
    this.api = api;
    this.taskId = taskId;
    this.file = "stdout";
    this.offset = 0;
    this.directory = null;
    this.task = null;
    this.timer = null;
    this.output = h("pre", { id: "task-log", tabindex: "0", "aria-label": "task output", "aria-live": "off" });
    this.note = h("p", { class: "muted", id: "task-log-note" }, "Looking for the sandbox…");
    const tab = (name) => h("button", { role: "tab", "aria-selected": String(name === this.file), "data-file": name, onclick: () => this.show(name) }, name);
    this.tabs = h("div", { class: "tabs", role: "tablist", "aria-label": "Sandbox files" }, tab("stdout"), tab("stderr"));
    this.element = h("section", { class: "logs" }, this.tabs, this.note, this.output);
  }

  show(name) {
    this.file = name;
    this.offset = 0;
    this.output.textContent = "";
    for (const button of this.tabs.children) button.setAttribute("aria-selected", String(button.dataset.file === name));
    this.poll();
  }

  start() {
    if (!this.timer) {
      this.timer = setInterval(() => this.poll(), 1000);
      this.poll();
    }
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async sandbox() {
    if (this.directory || !this.task || !this.task.slave_id) return this.directory;
    const state = await this.api.json(`/agent/${enc(this.task.slave_id)}/state`);
    for (const framework of [...(state.frameworks || []), ...(state.completed_frameworks || [])]) {
      if (framework.id !== this.task.framework_id) continue;
      for (const executor of [...(framework.executors || []), ...(framework.completed_executors || [])]) {
        const tasks = [...(executor.tasks || []), ...(executor.completed_tasks || [])];
        if (tasks.some((task) => task.id === this.taskId)) this.directory = executor.directory;
      }
    }
    return this.directory;
  }

  async poll() {
    if (this.busy) return;
    this.busy = true;
    try {
      const directory = await this.sandbox();
      if (!directory) {
        this.note.textContent = this.task ? "The agent knows no sandbox for this task." : "";
        return;
      }
      for (;;) {
        const path = `${directory}/${this.file}`;
        const page = await this.api.json(`/agent/${enc(this.task.slave_id)}/files/read?path=${enc(path)}&offset=${this.offset}&length=65536`);
        const data = page.data || "";
        this.note.textContent = `${path} on agent ${this.task.slave_id}, following`;
        if (!data.length) break;
        this.output.append(document.createTextNode(data));
        this.offset += new TextEncoder().encode(data).length;
        this.output.scrollTop = this.output.scrollHeight;
        if (data.length < 65536) break;
      }
    } catch (error) {
      this.note.textContent = `Cannot read the sandbox: ${error.message}`;
    } finally {
      this.busy = false;
    }
  }
}

// ---------------------------------------------------------------------------------------

export const apps = {
  title: "Apps",
  topics: ["service", "task"],
  async load({ api, params }) {
    const id = params.length ? `/${params.join("/")}` : null;
    const [list, deployments, queue] = await Promise.all([
      api.json("/v2/apps?embed=apps.counts&embed=apps.deployments&embed=apps.lastTaskFailure"),
      api.json("/v2/deployments"),
      api.json("/v2/queue", { write: true }).catch((error) => ({ error: error.message })),
    ]);
    if (!id) return { list, deployments, queue };
    const [app, tasks, versions] = await Promise.all([
      api.json(`/v2/apps${id}`),
      api.json(`/v2/apps${id}/tasks`),
      api.json(`/v2/apps${id}/versions`),
    ]);
    return { list, deployments, queue, id, app: app.app, tasks: tasks.tasks || [], versions: versions.versions || [] };
  },
  render(ctx, data) {
    const waiting = ((data.queue && data.queue.queue) || []).filter((item) => !data.id || (item.app && item.app.id === data.id));
    if (waiting.length) ctx.app.refreshIn(QUEUE_REFRESH_MS);
    if (data.id) return appDetail(ctx, data);
    const apps = data.list.apps || [];
    const rows = apps.map((app) => h("tr", { "data-app": app.id },
      h("td", {}, link(`apps${app.id}`, app.id)),
      h("td", { class: "num", "data-instances": app.id }, `${app.tasksRunning ?? 0} / ${app.instances}`),
      h("td", { class: "num", "data-healthy": app.id }, app.tasksHealthy ?? 0),
      h("td", { class: "num" }, app.tasksStaged ?? 0),
      h("td", {}, (app.deployments || []).length ? h("span", { class: "badge warn" }, "deploying") : h("span", { class: "badge ok" }, "stable")),
      h("td", {}, appActions(ctx, app))));
    return h("div", {},
      h("h1", {}, `Marathon apps (${apps.length})`),
      table(["App", ["Running / instances", "num"], ["Healthy", "num"], ["Staged", "num"], "Deployment", "Actions"], rows, "no apps"),
      h("h2", {}, "Deployments"),
      deploymentsTable(data.deployments),
      h("h2", {}, "Launch queue"),
      queueTable(data.queue));
  },
};

function appActions(ctx, app) {
  // What the user typed outlives the reloads that events cause until it is sent.
  const drafts = ctx.app.memory("scale-drafts", () => new Map());
  const input = h("input", { id: `scale-${app.id}`, type: "number", min: "0", value: drafts.get(app.id) ?? String(app.instances), style: "width:5em",
    "aria-label": `instances of ${app.id}`, "data-scale-input": app.id, oninput: (event) => drafts.set(app.id, event.target.value) });
  const scale = async () => {
    const instances = Number(input.value);
    if (!Number.isInteger(instances) || instances < 0) {
      ctx.app.toast("instances must be a whole number, 0 or more");
      return;
    }
    try {
      await ctx.api.request(`/v2/apps${app.id}`, { method: "PUT", write: true, body: { instances } });
      drafts.delete(app.id);
      ctx.app.toast(`scaling ${app.id} to ${instances}`, "info");
    } catch (error) {
      ctx.app.toast(`scale failed: ${error.message}`);
    }
  };
  const restart = async () => {
    if (!(await ctx.app.confirm(`Restart every instance of ${app.id}?`))) return;
    try {
      const answer = await ctx.api.json(`/v2/apps${app.id}/restart`, { method: "POST", write: true });
      started(ctx, app.id, "restart", answer);
      ctx.app.toast(`restarting ${app.id}`, "info");
    } catch (error) {
      ctx.app.toast(`restart failed: ${error.message}`);
    }
  };
  return h("span", { class: "toolbar" }, input,
    h("button", { class: "primary", onclick: scale, "data-scale": app.id }, "Scale"),
    h("button", { onclick: restart, "data-restart": app.id }, "Restart"));
}

/// Deployments this page started, kept across reloads, so that one that finished between
/// two loads is still seen to have run: id → {app, what, version, seen, finished}.
function startedDeployments(ctx) {
  return ctx.app.memory("started-deployments", () => new Map());
}

function started(ctx, appId, what, answer) {
  if (!answer || !answer.deploymentId) return;
  startedDeployments(ctx).set(answer.deploymentId, { app: appId, what, version: answer.version, finished: false });
  ctx.app.reloadSoon();
}

/// Marks the page's deployments that `/v2/deployments` no longer lists as finished, once
/// this master has applied their start (it lists them, or it knows the version they made:
/// the master the page reads from may be behind the leader that started them).
function settleStarted(ctx, deployments, versions) {
  const open = new Set((deployments || []).map((deployment) => deployment.id));
  const known = new Set(versions || []);
  for (const [id, record] of startedDeployments(ctx)) {
    if (open.has(id)) record.seen = true;
    else if (record.seen || known.has(record.version)) record.finished = true;
  }
}

function startedTable(ctx, appId) {
  const rows = [...startedDeployments(ctx)].filter(([, record]) => record.app === appId).reverse().map(([id, record]) => h("tr", { "data-deployment-id": id },
    h("td", { class: "mono" }, id),
    h("td", {}, record.what),
    h("td", { class: "mono" }, record.version || "–"),
    h("td", { "data-deployment-state": id }, record.finished ? h("span", { class: "badge ok" }, "finished") : h("span", { class: "badge warn" }, "in progress"))));
  return table(["Deployment", "Started here", "Version", "State"], rows, "none started from this page");
}

function deploymentsTable(deployments) {
  return table(["Deployment", "Apps", "Step", "Actions"], (deployments || []).map((deployment) => h("tr", { "data-deployment": deployment.id },
    h("td", { class: "mono" }, deployment.id),
    h("td", {}, (deployment.affectedApps || []).join(", ")),
    h("td", { class: "num" }, `${deployment.currentStep ?? "?"} / ${deployment.totalSteps ?? "?"}`),
    h("td", {}, (deployment.currentActions || []).map((action) => `${action.action} ${action.app}`).join(", ")))), "no deployments in progress");
}

function queueTable(queue) {
  if (queue.error) return h("p", { class: "empty" }, `The queue is not available: ${queue.error}`);
  return table(["App", ["Waiting", "num"], "Delay", "Why offers were not used"], (queue.queue || []).map((item) => {
    const summary = (item.processedOffersSummary || {}).rejectSummaryLastOffers || [];
    const reasons = summary.filter((reason) => reason.declined > 0).map((reason) => `${reason.reason}: ${reason.declined}/${reason.processed}`);
    const app = item.app ? item.app.id : "?";
    return h("tr", { "data-queue-app": app },
      h("td", {}, app),
      h("td", { class: "num" }, item.count ?? "–"),
      h("td", {}, item.delay && item.delay.overdue === false ? `${item.delay.timeLeftSeconds}s` : "none"),
      h("td", { "data-queue-reasons": app }, reasons.join("; ") || "–"));
  }), "nothing waits to be launched");
}

function appDetail(ctx, { id, app, tasks, versions, deployments, queue }) {
  settleStarted(ctx, deployments, versions);
  const rollback = (version) => async () => {
    if (!(await ctx.app.confirm(`Roll ${id} back to version ${version}?`))) return;
    try {
      const answer = await ctx.api.json(`/v2/apps${id}`, { method: "PUT", write: true, body: { version } });
      started(ctx, id, `rollback to ${version}`, answer);
      ctx.app.toast(`rolling ${id} back to ${version}`, "info");
    } catch (error) {
      ctx.app.toast(`rollback failed: ${error.message}`);
    }
  };
  const mine = (deployments || []).filter((deployment) => (deployment.affectedApps || []).includes(id));
  const waiting = { queue: ((queue && queue.queue) || []).filter((item) => item.app && item.app.id === id), error: queue && queue.error };
  return h("div", {},
    h("h1", {}, "App ", h("code", {}, id)),
    h("div", { class: "toolbar" }, appActions(ctx, app)),
    h("div", { class: "two" },
      h("section", {}, kv([
        ["Command", h("code", {}, app.cmd || "–")],
        ["Instances", h("span", { id: "app-instances" }, `${app.tasksRunning ?? 0} running of ${app.instances}`)],
        ["Healthy", `${app.tasksHealthy ?? 0} healthy, ${app.tasksUnhealthy ?? 0} unhealthy`],
        ["Resources", `cpus ${app.cpus} · mem ${mib(app.mem)} · disk ${mib(app.disk)}`],
        ["Version", h("code", { id: "app-version" }, app.version)],
        ["Last failure", app.lastTaskFailure ? `${app.lastTaskFailure.state}: ${app.lastTaskFailure.message}` : "none"],
      ])),
      h("section", {}, h("h2", {}, "Versions"), table(["Version", ""], versions.map((version) => h("tr", {},
        h("td", { class: "mono" }, version),
        h("td", {}, version === app.version ? "current" : h("button", { onclick: rollback(version), "data-rollback": version }, "Roll back to this")))), "no versions"))),
    h("h2", {}, `Instances (${tasks.length})`),
    table(["Task", "Host", "Ports", "State", "Health", "Version"], tasks.map((task) => h("tr", { "data-app-task": task.id },
      h("td", {}, link(`tasks/${enc(task.id)}`, task.id)),
      h("td", {}, task.host),
      h("td", { class: "mono" }, (task.ports || []).join(", ")),
      h("td", {}, stateBadge(task.state)),
      h("td", { "data-task-health": task.id }, (task.healthCheckResults || []).length ? (task.healthCheckResults.every((result) => result.alive) ? h("span", { class: "badge ok" }, "healthy") : h("span", { class: "badge bad" }, "unhealthy")) : "–"),
      h("td", { class: "mono" }, task.version || ""))), "no instances"),
    h("h2", {}, "Deployments"), deploymentsTable(mine),
    h("h2", {}, "Deployments started from this page"), startedTable(ctx, id),
    h("h2", {}, "Launch queue"), queueTable(waiting));
}

// ---------------------------------------------------------------------------------------

function eventIds(event) {
  const body = event.event && typeof event.event === "object" ? Object.values(event.event)[0] : null;
  if (!body || typeof body !== "object") return "";
  const parts = [];
  for (const key of ["task_id", "agent_id", "framework_id", "app_id", "offer_id", "deployment_id", "role", "state"]) {
    const value = body[key] ?? (body.status && body.status[key]) ?? (body.task && body.task[key]);
    if (value !== undefined && typeof value !== "object") parts.push(`${key.replace(/_id$/, "")} ${value}`);
  }
  return parts.join(" · ");
}

export const events = {
  title: "Events",
  topics: [],
  async load() {
    return {};
  },
  render(ctx) {
    const settings = ctx.app.memory("event-topics", () => ({ topics: new Set(TOPICS), paused: false }));
    const body = h("tbody", { id: "event-rows" });
    const shown = (event) => settings.topics.has(event.topic);
    const row = (event) => h("tr", { "data-topic": event.topic },
      h("td", { class: "mono" }, event.cursor),
      h("td", {}, event.topic),
      h("td", {}, event.kind),
      h("td", {}, eventIds(event)));
    const fill = () => body.replaceChildren(...ctx.app.events.filter(shown).slice(-300).reverse().map(row));
    fill();
    ctx.app.onLiveEvent = (event) => {
      if (settings.paused || !shown(event)) return;
      body.prepend(row(event));
      while (body.children.length > 300) body.lastChild.remove();
    };
    const boxes = TOPICS.map((topic) => h("label", {},
      h("input", { type: "checkbox", checked: settings.topics.has(topic), "data-topic-filter": topic, onchange: (event) => {
        if (event.target.checked) settings.topics.add(topic); else settings.topics.delete(topic);
        fill();
      } }), ` ${topic}`));
    const pause = h("button", { "aria-pressed": String(settings.paused), onclick: (event) => {
      settings.paused = !settings.paused;
      event.target.setAttribute("aria-pressed", String(settings.paused));
      event.target.textContent = settings.paused ? "Resume" : "Pause";
      if (!settings.paused) fill();
    } }, settings.paused ? "Resume" : "Pause");
    return h("div", {},
      h("h1", {}, "Live events"),
      h("fieldset", { class: "toolbar" }, h("legend", {}, "Topics"), boxes, pause),
      h("div", { class: "feed" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Cursor", "Topic", "Kind", "About"].map((header) => h("th", { scope: "col" }, header)))),
        body)));
  },
};

// ---------------------------------------------------------------------------------------

export const timeline = {
  title: "Time travel",
  topics: [],
  async load({ api }) {
    return { cluster: await api.refreshCluster() };
  },
  render(ctx, { cluster }) {
    const low = Math.max(1, cluster.audit_start || 1);
    const high = Math.max(low, cluster.applied_index || low);
    const chosen = ctx.app.memory("timeline", () => ({ index: high }));
    if (chosen.index > high || chosen.index < low) chosen.index = high;
    const result = h("div", { id: "timeline-result" });
    const label = h("output", { id: "timeline-label", for: "timeline-slider" }, `index ${chosen.index}`);
    let timer = null;
    const show = async () => {
      const index = chosen.index;
      result.setAttribute("aria-busy", "true");
      try {
        const state = await ctx.api.json(`/corral/v1/state?at=${index}`);
        if (index !== chosen.index) return;
        const tasks = allTasks(state);
        const live = tasks.filter((task) => !TERMINAL.has(task.state));
        const info = state.corral_state || {};
        label.textContent = `index ${index} · ${(info.time || "").replace("T", " ")}`;
        result.replaceChildren(
          h("div", { class: "grid" },
            h("section", { class: "card" }, h("h2", {}, "Agents"), h("div", { class: "big", id: "timeline-agent-count" }, (state.slaves || []).length)),
            h("section", { class: "card" }, h("h2", {}, "Frameworks"), h("div", { class: "big" }, (state.frameworks || []).length)),
            h("section", { class: "card" }, h("h2", {}, "Live tasks"), h("div", { class: "big", id: "timeline-task-count" }, live.length),
              h("p", { class: "muted" }, `${tasks.length} known`))),
          h("h2", {}, `Tasks at index ${index}`),
          table(TASK_HEADERS, tasks.slice(0, 200).map(taskRow), "no tasks at that moment"));
      } catch (error) {
        result.replaceChildren(h("p", { class: "empty" }, `No state at index ${index}: ${error.message}`));
      } finally {
        result.removeAttribute("aria-busy");
      }
    };
    const slider = h("input", { id: "timeline-slider", class: "slider", type: "range", min: String(low), max: String(high), step: "1", value: String(chosen.index),
      "aria-label": "log index to show the cluster at", "aria-valuetext": `index ${chosen.index}`,
      oninput: (event) => {
        chosen.index = Number(event.target.value);
        label.textContent = `index ${chosen.index}`;
        event.target.setAttribute("aria-valuetext", `index ${chosen.index}`);
        clearTimeout(timer);
        timer = setTimeout(show, 150);
      } });
    show();
    return h("div", {},
      h("h1", {}, "The cluster at any retained moment"),
      h("p", { class: "muted" }, `The journal holds indexes ${low} to ${high}. Drag the slider or use the arrow keys, Page Up/Down, Home and End.`),
      h("div", { class: "toolbar" }, h("label", { for: "timeline-slider" }, "Log index"), label,
        h("button", { id: "timeline-latest", onclick: async () => {
          // The log has grown since the page opened: the slider reaches the newest index.
          try {
            const latest = await ctx.api.refreshCluster();
            slider.max = String(Math.max(low, latest.applied_index || high));
          } catch (error) {
            ctx.app.toast(`Could not read the latest index: ${error.message}`);
          }
          chosen.index = Number(slider.max);
          slider.value = slider.max;
          show();
        } }, "Latest")),
      slider,
      result);
  },
};
