#!/usr/bin/env python3
"""Writes grafana/dashboards/*.json (Grafana's classic dashboard model, Grafana 10+).

The dashboards are data: edit the panels below and run `python3 grafana/generate.py`; the
live Prometheus test (api/corral/tests/corral/grafana.rs) checks that the committed JSON is
what this script writes, lints every panel and runs every query against a real cluster.

Every panel answers a question an on-call engineer asks; its description says what to do
when it looks wrong.
"""
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
S = 'cluster=~"$cluster", job=~"$job", instance=~"$instance"'
RATE = "$__rate_interval"


def sel(extra=""):
    return "{" + S + (", " + extra if extra else "") + "}"


def eq(label, value, op=""):
    return f'{label}={op}"{value}"'


def p99(metric, by="", extra=""):
    group = ", ".join([part for part in [by, "le"] if part])
    return f"histogram_quantile(0.99, sum by ({group}) (rate({metric}_bucket{sel(extra)}[{RATE}])))"


def p50(metric, by="", extra=""):
    return p99(metric, by, extra).replace("0.99", "0.5", 1)


def panel(title, description, unit, targets, kind="timeseries", width=12):
    if isinstance(targets, str):
        targets = [(targets, "")]
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "gridPos": {"w": width, "h": 8 if kind == "timeseries" else 4},
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "expr": expr,
                "legendFormat": legend,
            }
            for index, (expr, legend) in enumerate(targets)
        ],
    }


def variable(name, label, query):
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "query": {"query": query, "refId": name},
        "definition": query,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"text": "All", "value": "$__all"},
        "refresh": 2,
        "sort": 1,
    }


def dashboard(uid, title, description, panels):
    x = y = 0
    row_height = 0
    for item in panels:
        grid = item["gridPos"]
        if x + grid["w"] > 24:
            x, y = 0, y + row_height
            row_height = 0
        grid["x"], grid["y"] = x, y
        x += grid["w"]
        row_height = max(row_height, grid["h"])
    for index, item in enumerate(panels, start=1):
        item["id"] = index
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["corral"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "timezone": "",
        "links": [{"title": "Corral", "type": "dashboards", "tags": ["corral"], "asDropdown": True}],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                variable("cluster", "Cluster", "label_values(corral_build_info, cluster)"),
                variable("job", "Job", 'label_values(corral_build_info{cluster=~"$cluster"}, job)'),
                variable(
                    "instance",
                    "Instance",
                    'label_values(corral_build_info{cluster=~"$cluster", job=~"$job"}, instance)',
                ),
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


# Every master computes the same cluster gauges from the same log: `max` shows the value
# once instead of once per master.
OVERVIEW = dashboard(
    "corral-overview",
    "Corral / Cluster overview",
    "Is the cluster healthy? Leader, masters, agents, frameworks, tasks and resources.",
    [
        panel("Has a leader", "1 when every master reporting knows a leader. 0 means no command can be committed: check that a majority of masters is up and can reach each other (see Replicated log).", "bool", f"min(corral_raft_has_leader{sel()})", "stat", 6),
        panel("Masters reporting", "Masters scraped and reporting Raft metrics. Fewer than the configured members means one is down: with 3 masters, one more loss stops the cluster.", "none", f"count(corral_raft_term{sel()})", "stat", 6),
        panel("Leader changes", "Leader changes seen over the dashboard's time range. More than a few means elections keep happening: look for slow fsyncs, an overloaded machine or a flaky network between masters.", "none", f"max(increase(corral_raft_leader_changes_total{sel()}[$__range]))", "stat", 6),
        panel("Agents reachable", "Agents that answer heartbeats and take tasks. A drop means agents stopped reporting: check the Agents and tasks dashboard and the agents' hosts.", "none", f'max(corral_agents{sel(eq("state", "active"))})', "stat", 6),
        panel("Agents by state", "Agents by state as the log decided it. Unreachable agents lose their offers; gone ones their tasks. A rise in unreachable: network or agent hosts.", "none", [(f"max by (state) (corral_agents{sel()})", "{{state}}")]),
        panel("Frameworks by state", "Connected, disconnected (inside their failover timeout) and completed frameworks. Disconnected ones that stay so get removed with their tasks when the timeout ends.", "none", [(f"max by (state) (corral_frameworks{sel()})", "{{state}}")]),
        panel("Tasks by state", "Tasks the masters track, by Mesos state. Many in STAGING or STARTING means launches are slow or stuck: check agent launch latency and failures.", "none", [(f'max by (state) (corral_tasks{sel()}) > 0 or max by (state) (corral_tasks{sel(eq("state", "TASK_RUNNING"))})', "{{state}}")]),
        panel("Task state changes", "Task state changes per second, by new state. A rise in FAILED, LOST or ERROR is the alert CorralTasksFailing: see the Agents and tasks dashboard for reasons.", "ops", [(f"sum by (state) (rate(corral_task_transitions_total{sel()}[{RATE}]))", "{{state}}")]),
        panel("CPUs: total, allocated, offered", "CPUs of reachable agents, allocated to tasks and held in offers. Allocated near total: the cluster is full, add agents or lower quotas.", "none", [(f"max by (kind) (sum by (instance, kind) (corral_resource_cpus{sel()}))", "{{kind}}")]),
        panel("Memory: total, allocated, offered", "Memory of reachable agents, allocated to tasks and held in offers. Allocated near total: the cluster is full.", "bytes", [(f"max by (kind) (sum by (instance, kind) (corral_resource_memory_bytes{sel()}))", "{{kind}}")]),
    ],
)

LOG = dashboard(
    "corral-log",
    "Corral / Replicated log",
    "Is the Raft log healthy? Commit latency, fsync, replication lag, elections, snapshots, journal.",
    [
        panel("Commit latency p99", "Time from a command proposed to its batch committed and applied, on the leader. Above ~50 ms: look at fsync p99 and replication lag below.", "s", [(p99("corral_raft_commit_duration_seconds", "instance"), "{{instance}}")]),
        panel("Fsync p99", "Time to fsync the Raft log, per master. It bounds commit latency; above 10 ms the disk is slow or shared (alert CorralFsyncSlow).", "s", [(p99("corral_raft_flush_duration_seconds", "instance"), "{{instance}}")]),
        panel("Append p99", "Time to write an append into sled before its fsync. High while fsync is low: the master is CPU-starved.", "s", [(p99("corral_raft_append_duration_seconds", "instance"), "{{instance}}")]),
        panel("Apply p99", "Time to apply committed entries to the state and journal their events. High: a hot command type or a very large state; check Commands per entry.", "s", [(p99("corral_raft_apply_duration_seconds", "instance"), "{{instance}}")]),
        panel("Replication lag", "Entries each member is behind the leader's log, as the leader sees it. Growing for one member: that master is slow, partitioned or catching up from a snapshot (alert CorralFollowerLagging).", "none", [(f"max by (member) (corral_raft_replication_lag_entries{sel()})", "member {{member}}")]),
        panel("Committed but not applied", "Entries committed and not yet applied, per master. Growing: that master's apply cannot keep up.", "none", [(f"corral_raft_commit_index{sel()} - corral_raft_applied_index{sel()}", "{{instance}}")]),
        panel("Commands per entry", "Commands the leader packs into one Raft entry (group commit), p50 and p99. Large batches mean heavy load; they keep throughput up at the price of latency.", "none", [(p50("corral_raft_batch_commands"), "p50"), (p99("corral_raft_batch_commands"), "p99")]),
        panel("Term and leader changes", "Raft term per master and leader changes seen. A climbing term with no leader: elections keep failing (alert CorralLeaderFlapping / CorralNoLeader).", "none", [(f"max(corral_raft_term{sel()})", "term"), (f"max(increase(corral_raft_leader_changes_total{sel()}[{RATE}]))", "leader changes")]),
        panel("Snapshot duration", "Time to build or install a state snapshot (p99 over the interval, NaN when none ran). Installing often on one member: it falls behind the purged log.", "s", [(p99("corral_raft_snapshot_duration_seconds", "operation"), "{{operation}}")]),
        panel("Snapshot size", "Size of the last snapshot built or installed per master. Growth follows the number of tasks and agents.", "bytes", [(f"max by (instance, operation) (corral_raft_snapshot_size_bytes{sel()})", "{{instance}} {{operation}}")]),
        panel("Journal retained", "Log indexes still in the event journal (last minus first). A subscriber older than the first index gets 410 Gone and must resync.", "none", [(f"corral_journal_last_index{sel()} - corral_journal_first_index{sel()}", "{{instance}}")]),
        panel("Log position", "Last log, committed, applied and snapshot index per master. Lines that part: a master is behind.", "none", [(f"corral_raft_last_log_index{sel()}", "{{instance}} last"), (f"corral_raft_applied_index{sel()}", "{{instance}} applied"), (f"corral_raft_snapshot_index{sel()}", "{{instance}} snapshot")]),
    ],
)

ALLOCATION = dashboard(
    "corral-allocation",
    "Corral / Allocation and fairness",
    "Are resources shared fairly and offered promptly? DRF shares, offers, allocator cycle, waiting frameworks.",
    [
        panel("Dominant share by role", "DRF dominant share (0 to 1) of each role: allocated plus offered over the cluster total. A role stuck at 0 while others grow is starved: check its quota, weight and filters with `corral explain`.", "percentunit", [(f"max by (role) (corral_role_dominant_share{sel()})", "{{role}}")]),
        panel("Dominant share by framework (top 10)", "The ten frameworks with the largest dominant share (the masters export at most the 100 largest).", "percentunit", [(f"topk(10, max by (framework_id, name) (corral_framework_dominant_share{sel()}))", "{{name}}")]),
        panel("Offers", "Offers made, declined and rescinded per second. Many declines: frameworks refuse what they get (constraints); many rescinds: agents leave or offers time out.", "ops", [(f"sum(rate(corral_offers_made_total{sel()}[{RATE}]))", "made"), (f"sum(rate(corral_offers_declined_total{sel()}[{RATE}]))", "declined"), (f"sum(rate(corral_offers_rescinded_total{sel()}[{RATE}]))", "rescinded")]),
        panel("Allocator cycle p99", "Time for one allocation cycle on the leader. Above a second delays every offer (alert CorralAllocatorCycleSlow): too many frameworks or filters for this machine.", "s", [(p99("corral_allocator_cycle_duration_seconds", "instance"), "{{instance}}")]),
        panel("CPUs offered", "CPUs put into offers per second. Zero while frameworks wait: nothing is free, or every framework suppressed or filtered it.", "none", [(f"sum(rate(corral_allocator_offered_cpus_total{sel()}[{RATE}]))", "cpus/s")]),
        panel("Outstanding offers", "Offers made and not answered yet. Growing: frameworks sit on offers; lower their refuse time or the offer timeout.", "none", [(f"max(corral_offers_outstanding{sel()})", "offers")]),
        panel("Frameworks waiting for offers", "Connected frameworks that want offers and hold none. Non-zero for long: the cluster is full or their roles are starved.", "none", [(f"max(corral_frameworks_without_offers{sel()})", "frameworks")]),
        panel("Wait for first offer p99", "Time from a framework subscribing to its first offer. Above the allocation interval: the allocator is slow or the cluster full.", "s", [(p99("corral_framework_first_offer_wait_seconds"), "p99")]),
    ],
)

AGENTS = dashboard(
    "corral-agents-tasks",
    "Corral / Agents and tasks",
    "Do tasks launch fast and keep running? Launch latency, failures, per-agent usage, health checks.",
    [
        panel("Task launch latency", "From a task's ACCEPT applied to RUNNING, p50 and p99 (masters). High: image pulls, slow agents or a slow status path; compare with the agents' own launch time.", "s", [(p50("corral_task_launch_duration_seconds"), "p50"), (p99("corral_task_launch_duration_seconds"), "p99")]),
        panel("Agent launch time p99", "From an agent reading the launch to the task running, by containerizer. Docker high: image pulls; process high: the host is overloaded.", "s", [(p99("corral_agent_task_launch_duration_seconds", "containerizer"), "{{containerizer}}")]),
        panel("Launch failures by reason", "Tasks that ended before they ran, per second, by Mesos reason. Look at the failing tasks' messages (`corral history task ID`).", "ops", [(f"sum by (reason) (rate(corral_agent_task_launch_failures_total{sel()}[{RATE}]))", "{{reason}}")]),
        panel("Running tasks per agent", "Tasks running on each agent. One agent with none while others are full: it is deactivated, draining or filtered by constraints.", "none", [(f'sum by (instance) (corral_agent_tasks{sel(eq("state", "TASK_RUNNING"))})', "{{instance}}")]),
        panel("Task CPU (top 10)", "CPU seconds per second used by the ten busiest tasks (agents sample at most 500 tasks each).", "none", [(f"topk(10, rate(corral_task_cpu_seconds_total{sel()}[{RATE}]))", "{{task_id}}")]),
        panel("Task memory (top 10)", "Resident memory of the ten largest tasks. Close to their limit: they will be OOM-killed.", "bytes", [(f"topk(10, corral_task_memory_rss_bytes{sel()})", "{{task_id}}")]),
        panel("Health checks", "Health check results per second by outcome. Failures rising: the service is unhealthy and Marathon will replace its instances.", "ops", [(f"sum by (outcome) (rate(corral_agent_health_checks_total{sel()}[{RATE}]))", "{{outcome}}")]),
        panel("Status updates pending", "Status updates each agent wrote and the log has not decided yet. Growing: the agent cannot reach the leader.", "none", [(f"corral_agent_status_updates_pending{sel()}", "{{instance}}")]),
        panel("Oldest agent heartbeat", "Longest time since a reachable agent's last heartbeat (state clock). Near the heartbeat timeout: agents are about to be marked unreachable (alert CorralAgentsUnreachable).", "s", [(f"max(corral_agent_heartbeat_age_max_seconds{sel()})", "age")]),
        panel("Agents registered", "1 per agent that has an agent id. 0: it cannot register with the masters; check its --master list and the masters' logs.", "none", [(f"corral_agent_registered{sel()}", "{{instance}}")]),
    ],
)

MARATHON = dashboard(
    "corral-marathon",
    "Corral / Marathon services",
    "Are services at their desired size and healthy? Instances, deployments, backoff.",
    [
        panel("Instances: desired, running, healthy", "Instances of all apps. Running below desired: launches wait for offers or are in backoff; healthy below running: health checks fail.", "none", [(f"max by (status) (corral_marathon_instances{sel()})", "{{status}}")]),
        panel("Apps", "Marathon apps defined.", "none", f"max(corral_marathon_apps{sel()})", "stat", 6),
        panel("Deployments in progress", "Deployments running now. One that stays: see the oldest deployment's age and the app's last task failure.", "none", f"max(corral_marathon_deployments{sel()})", "stat", 6),
        panel("Per app: running / desired", "Running over desired instances per app (the first 100 apps). Below 1 for long: the app cannot launch (constraints, resources, failures).", "percentunit", [(f'max by (app) (corral_marathon_app_instances{sel(eq("status", "running"))}) / clamp_min(max by (app) (corral_marathon_app_instances{sel(eq("status", "desired"))}), 1)', "{{app}}")]),
        panel("Oldest deployment age", "Age of the oldest deployment in progress (0 when none). Above 10 minutes is the alert CorralDeploymentStuck.", "s", [(f"max(corral_marathon_deployment_age_max_seconds{sel()})", "age")]),
        panel("Launch backoff", "Launch delay in force per app after failures (0 when none). Growing: its tasks keep failing; read lastTaskFailure in /v2/apps.", "s", [(f"max by (app) (corral_marathon_launch_delay_seconds{sel()})", "{{app}}")]),
        panel("Instances waiting", "Desired instances not launched yet: waiting for matching offers or in backoff.", "none", [(f'max(corral_marathon_instances{sel(eq("status", "waiting"))})', "waiting")]),
        panel("Autoscaler decisions", "The leader autoscaler's evaluations per second by outcome: up and down are scalings committed, hold the rest. Up and down alternating: widen the tolerance or the scale-down window; why each step happened is in /corral/v1/apps/ID/autoscaler/decisions.", "ops", [(f"sum by (direction) (rate(corral_autoscaler_decisions_total{sel()}[{RATE}]))", "{{direction}}")]),
        panel("Autoscaler errors", "Evaluations that failed or were cut short, by stage: read_state (no quorum), metric (a Prometheus query failed), propose (not committed), refused (the log refused a stale decision; a few around failovers are expected). The masters' logs say why.", "ops", [(f"sum by (stage) (rate(corral_autoscaler_errors_total{sel()}[{RATE}]))", "{{stage}}")]),
        panel("Autoscaled apps at max", "1 while an app sits at its policy's max and its metrics ask for more (leader only). Staying at 1 is the alert CorralAutoscalerAtMax: raise max or give the app more capacity per instance.", "none", [(f"max by (app) (corral_autoscaler_at_max{sel()})", "{{app}}")]),
    ],
)

API = dashboard(
    "corral-api",
    "Corral / API and streams",
    "Do clients get answers? Request rate, errors, latency per route; stream subscribers, lag, cut-offs; process.",
    [
        panel("Requests by status", "Requests per second by HTTP status, masters and agents. 307s are followers redirecting to the leader; 503s mean no leader.", "reqps", [(f"sum by (status) (rate(corral_http_requests_total{sel()}[{RATE}]))", "{{status}}")]),
        panel("Server errors", "Share of requests answered 5xx. Non-zero: read the masters' logs, every 5xx is logged with its cause.", "percentunit", [(f'sum(rate(corral_http_requests_total{sel(eq("status", "5..", "~"))}[{RATE}])) / clamp_min(sum(rate(corral_http_requests_total{sel()}[{RATE}])), 1e-9)', "5xx")]),
        panel("Latency p99 by route", "p99 latency per matched route (streams excluded: they last as long as the client stays). A slow state read: large clusters, use ?consistency=local or the event stream.", "s", [(p99("corral_http_request_duration_seconds", "route", 'route!~".*events|/api/v1/scheduler"'), "{{route}}")]),
        panel("Requests by route", "Requests per second per matched route.", "reqps", [(f"sum by (route) (rate(corral_http_requests_total{sel()}[{RATE}]))", "{{route}}")]),
        panel("Stream subscribers", "Open event streams by kind (framework, events, operator), per master.", "none", [(f"sum by (kind) (corral_stream_subscribers{sel()})", "{{kind}}")]),
        panel("Slowest subscriber lag", "Log entries between the last applied one and the slowest subscriber, by kind. Growing: a reader cannot keep up and will be cut off.", "none", [(f"max by (kind) (corral_stream_lag_entries{sel()})", "{{kind}}")]),
        panel("Stream cut-offs", "Streams ended by the master, per second, by reason. too_slow/too_old: subscribers fell behind and must resume from their cursor (alert CorralStreamSubscribersCutOff).", "ops", [(f"sum by (reason) (rate(corral_stream_disconnects_total{sel()}[{RATE}]))", "{{reason}}")]),
        panel("Process CPU", "CPU seconds per second of each Corral process. A master near 1 core: it is the bottleneck.", "none", [(f"rate(process_cpu_seconds_total{sel()}[{RATE}])", "{{instance}}")]),
        panel("Resident memory", "Resident memory of each Corral process. Steady growth on a master with a steady cluster: report it.", "bytes", [(f"process_resident_memory_bytes{sel()}", "{{instance}}")]),
        panel("Open file descriptors", "Open fds per process against its limit. Near the limit: raise it (many streams and agents hold connections).", "none", [(f"process_open_fds{sel()}", "{{instance}}"), (f"process_max_fds{sel()}", "{{instance}} limit")]),
        panel("Threads", "OS threads per process.", "none", [(f"process_threads{sel()}", "{{instance}}")]),
        panel("Build", "Version each process runs. Two versions side by side: a rolling upgrade is under way.", "none", [(f"count by (version) (corral_build_info{sel()})", "{{version}}")]),
    ],
)

DASHBOARDS = {
    "overview": OVERVIEW,
    "replicated-log": LOG,
    "allocation": ALLOCATION,
    "agents-tasks": AGENTS,
    "marathon": MARATHON,
    "api-streams": API,
}


def render(value):
    return json.dumps(value, indent=2) + "\n"


if __name__ == "__main__":
    for name, board in DASHBOARDS.items():
        (HERE / "dashboards" / f"{name}.json").write_text(render(board))
