"""Scenarios for Corral's Marathon-compatible /v2 API, driven by the unmodified `marathon`
client from PyPI (pinned in requirements.txt).

Usage: marathon_scenarios.py SCENARIO --masters URL,URL,URL [--hosts a,b,c]

Progress goes to stdout as JSON lines; a line {"step": "...", "wait": true} asks the Rust
test for a go-ahead on stdin (used to kill the leader at a chosen moment). Exit status 0
means every check held; a failed check raises and exits non-zero with the reason.
"""

import argparse
import collections
import collections.abc
import datetime
import json
import math
import queue
import sys
import threading
import time
import urllib.request

# marathon 0.13.0 (the last release) still uses `collections.Iterable`, which Python 3.10
# removed; its JSON encoder needs the alias back to serialise nested objects.
collections.Iterable = collections.abc.Iterable  # type: ignore[attr-defined]

from marathon import MarathonClient  # noqa: E402
from marathon.exceptions import ConflictError, MarathonHttpError, NotFoundError  # noqa: E402
from marathon.models import MarathonApp, MarathonConstraint, MarathonHealthCheck  # noqa: E402
from marathon.models.app import MarathonUpgradeStrategy  # noqa: E402

DEADLINE = 90.0


def say(step, **fields):
    print(json.dumps({"step": step, **fields}), flush=True)


def wait_for_go(step, **fields):
    say(step, wait=True, **fields)
    line = sys.stdin.readline()
    if not line:
        raise SystemExit("the test harness went away")


def eventually(what, probe, deadline=DEADLINE, interval=0.25):
    """Polls `probe` until it returns something truthy, or fails naming `what`."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < deadline:
        try:
            last = probe()
        except (NotFoundError, MarathonHttpError) as error:
            last = error
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def http_app(app_id, instances, version_marker, **extra):
    """An app whose instances serve HTTP on their first port, health-checked over HTTP."""
    return MarathonApp(
        id=app_id,
        cmd=f"exec python3 -m http.server $PORT0 --bind 127.0.0.1 # {version_marker}",
        cpus=0.1,
        mem=32,
        instances=instances,
        health_checks=[
            MarathonHealthCheck(
                protocol="HTTP",
                path="/",
                port_index=0,
                grace_period_seconds=30,
                interval_seconds=1,
                timeout_seconds=1,
                max_consecutive_failures=3,
            )
        ],
        **extra,
    )


def is_healthy(task):
    return (
        task.state == "TASK_RUNNING"
        and bool(task.health_check_results)
        and all(result.alive for result in task.health_check_results)
    )


def running_healthy(client, app_id, instances):
    app = client.get_app(app_id, embed_tasks=True)
    running = [task for task in app.tasks if task.state == "TASK_RUNNING"]
    healthy = [task for task in app.tasks if is_healthy(task)]
    if app.instances == instances and len(running) == instances and len(healthy) == instances:
        return app
    return None


def tasks_of(client, app_id):
    """Tasks of an app, from /v2/tasks: unlike /v2/apps/{id}/tasks it answers for an app
    that is gone, while its last tasks stop."""
    return [task for task in client.list_tasks() if task.app_id == app_id]


def running_tasks(client, app_id):
    return [task for task in client.list_tasks(app_id) if task.state == "TASK_RUNNING"]


def no_deployments(client, app_id):
    return not [d for d in client.list_deployments() if app_id in (d.affected_apps or [])]


def healthy_count(client, app_id):
    return sum(1 for task in client.get_app(app_id, embed_tasks=True).tasks if is_healthy(task))


def lifecycle(client, _args):
    """Create, scale up and down, roll the command under minimumHealthCapacity, restart,
    delete."""
    check(client.ping().strip() in (b"pong", b'"pong"'), "ping answers pong")
    info = client.get_info()
    check(info.name == "marathon", f"info names marathon: {info.name}")
    check(client.get_leader()["leader"], "a leader is named")

    app_id = "/corral/web"
    created = client.create_app(app_id, http_app(app_id, 2, "v1"))
    check(created.id == app_id, f"created app id {created.id}")
    check(created.instances == 2, "created with 2 instances")
    app = eventually("2 healthy instances", lambda: running_healthy(client, app_id, 2))
    say("created", tasks=sorted(task.id for task in app.tasks))
    eventually("the start deployment to finish", lambda: no_deployments(client, app_id))

    client.scale_app(app_id, instances=4)
    eventually("4 healthy instances", lambda: running_healthy(client, app_id, 4))
    eventually("the scale-up deployment to finish", lambda: no_deployments(client, app_id))
    client.scale_app(app_id, instances=2)
    app = eventually("2 instances after scaling down", lambda: running_healthy(client, app_id, 2))
    eventually("the scale-down deployment to finish", lambda: no_deployments(client, app_id))
    before = {task.id for task in app.tasks}
    say("scaled", tasks=sorted(before))

    # minimumHealthCapacity 0.5 of 2: at least one healthy instance at every moment.
    changed = http_app(
        app_id,
        2,
        "v2",
        upgrade_strategy=MarathonUpgradeStrategy(
            minimum_health_capacity=0.5, maximum_over_capacity=0.0
        ),
    )
    client.update_app(app_id, changed)
    lowest = math.inf
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE:
        lowest = min(lowest, healthy_count(client, app_id))
        app = running_healthy(client, app_id, 2)
        if app and not ({task.id for task in app.tasks} & before) and no_deployments(client, app_id):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the rolling deployment did not finish")
    check(lowest >= 1, f"healthy instances fell to {lowest} during the rolling deployment")
    check("v2" in client.get_app(app_id).cmd, "the new command is in place")
    say("rolled", lowest_healthy=lowest, tasks=sorted(task.id for task in app.tasks))

    before = {task.id for task in app.tasks}
    client.restart_app(app_id)

    def all_replaced():
        app = running_healthy(client, app_id, 2)
        return app if app and not ({t.id for t in app.tasks} & before) else None

    app = eventually("every instance replaced by the restart", all_replaced)
    eventually("the restart deployment to finish", lambda: no_deployments(client, app_id))
    versions = client.list_versions(app_id)
    check(len(versions) >= 4, f"versions kept: {versions}")
    say("restarted", tasks=sorted(task.id for task in app.tasks), versions=len(versions))

    client.delete_app(app_id)
    eventually("the app to be gone", lambda: app_id not in [a.id for a in client.list_apps()])
    eventually("its tasks to be gone", lambda: not tasks_of(client, app_id))
    say("deleted")


def constraints(client, args):
    """UNIQUE hostname across agents, MAX_PER, and an unmeetable constraint in /v2/queue."""
    hosts = args.hosts.split(",")
    unique = MarathonApp(
        id="/unique",
        cmd="sleep 600",
        cpus=0.1,
        mem=16,
        instances=len(hosts),
        constraints=[MarathonConstraint("hostname", "UNIQUE")],
    )
    client.create_app("/unique", unique)

    def spread():
        tasks = [t for t in client.list_tasks("/unique") if t.state == "TASK_RUNNING"]
        return tasks if len(tasks) == len(hosts) else None

    tasks = eventually("one UNIQUE instance per host", spread)
    check(sorted(t.host for t in tasks) == sorted(hosts), f"UNIQUE hosts: {[t.host for t in tasks]}")
    say("unique", hosts=sorted(t.host for t in tasks))

    # A killed task is replaced; with scale=True the app shrinks instead.
    victim = tasks[0]
    killed = client.kill_task("/unique", victim.id)
    check(killed.id == victim.id, f"the killed task is answered: {killed}")

    def replaced():
        now = running_tasks(client, "/unique")
        ids = {task.id for task in now}
        return now if len(now) == len(hosts) and victim.id not in ids else None

    tasks = eventually("the killed instance replaced", replaced)
    check(victim.host in {t.host for t in tasks}, "the replacement takes the freed host")

    def shrunk_to(count, without_host=None):
        def probe():
            now = running_tasks(client, "/unique")
            hosts_now = {task.host for task in now}
            done = (
                client.get_app("/unique").instances == count
                and len(now) == count
                and without_host not in hosts_now
                and no_deployments(client, "/unique")
            )
            return now if done else None

        return probe

    answer = client.kill_tasks("/unique", scale=True, host=hosts[0])
    check("deploymentId" in answer, f"a scaling kill starts a deployment: {answer}")
    tasks = eventually("/unique without its instance on the first host", shrunk_to(len(hosts) - 1, hosts[0]))
    check(client.kill_given_tasks([tasks[0].id], scale=True), "the bulk kill is accepted")
    eventually("/unique scaled down by the bulk kill", shrunk_to(len(hosts) - 2))
    say("killed", left=len(hosts) - 2)

    max_per = MarathonApp(
        id="/max-per",
        cmd="sleep 600",
        cpus=0.1,
        mem=16,
        instances=2 * len(hosts),
        constraints=[MarathonConstraint("hostname", "MAX_PER", "2")],
    )
    client.create_app("/max-per", max_per)

    def at_most_two():
        tasks = [t for t in client.list_tasks("/max-per") if t.state == "TASK_RUNNING"]
        return tasks if len(tasks) == 2 * len(hosts) else None

    tasks = eventually("MAX_PER 2 instances", at_most_two)
    per_host = {host: sum(1 for t in tasks if t.host == host) for host in hosts}
    check(all(count == 2 for count in per_host.values()), f"MAX_PER 2: {per_host}")
    say("max_per", per_host=per_host)

    # One more than MAX_PER allows: the last instance waits, and the queue says why.
    client.scale_app("/max-per", instances=2 * len(hosts) + 1)
    nowhere = MarathonApp(
        id="/nowhere",
        cmd="sleep 600",
        cpus=0.1,
        mem=16,
        instances=1,
        constraints=[MarathonConstraint("hostname", "CLUSTER", "no-such-host")],
    )
    client.create_app("/nowhere", nowhere)

    def explained(app_id):
        def probe():
            for item in client.list_queue(embed_last_unused_offers=True):
                if item.app.id != app_id or not item.last_unused_offers:
                    continue
                reasons = {r for offer in item.last_unused_offers for r in offer["reason"]}
                if "UnfulfilledConstraint" in reasons:
                    return item
            return None

        return probe

    item = eventually("/nowhere queued with UnfulfilledConstraint", explained("/nowhere"))
    check(item.count == 1, f"one /nowhere instance waits: {item.count}")
    summary = item.processed_offers_summary
    rejected = {r["reason"]: r["declined"] for r in summary["rejectSummaryLastOffers"]}
    check(rejected.get("UnfulfilledConstraint", 0) >= 1, f"reject summary: {summary}")
    eventually("/max-per queued with UnfulfilledConstraint", explained("/max-per"))
    running = [t for t in client.list_tasks("/max-per") if t.state == "TASK_RUNNING"]
    check(len(running) == 2 * len(hosts), f"MAX_PER held: {len(running)} running")
    say("queued", reasons=sorted(rejected))
    for app_id in ("/unique", "/max-per", "/nowhere"):
        client.delete_app(app_id, force=True)
    eventually("every app gone", lambda: not client.list_apps())


def health_and_backoff(client, _args):
    """A failing health check gets its task replaced; a crashing command backs off."""
    failing = MarathonApp(
        id="/unhealthy",
        cmd="exec python3 -m http.server $PORT0 --bind 127.0.0.1",
        cpus=0.1,
        mem=32,
        instances=1,
        health_checks=[
            MarathonHealthCheck(
                protocol="HTTP",
                path="/no-such-page",
                port_index=0,
                grace_period_seconds=2,
                interval_seconds=1,
                timeout_seconds=1,
                max_consecutive_failures=2,
            )
        ],
    )
    client.create_app("/unhealthy", failing)
    first = eventually("a first /unhealthy task", lambda: client.list_tasks("/unhealthy"))[0].id

    def replaced():
        tasks = client.list_tasks("/unhealthy")
        return tasks if tasks and all(t.id != first for t in tasks) else None

    eventually("the unhealthy task to be replaced", replaced)
    say("unhealthy_replaced", first=first)
    client.delete_app("/unhealthy", force=True)

    # The event bus gives the agent's own times for each status, so the gaps measured are
    # the scheduler's, not this script's polling.
    statuses = queue.Queue()

    def listen():
        try:
            types = ["event_stream_attached", "status_update_event"]
            for data in client.event_stream(raw=True, event_types=types):
                statuses.put(json.loads(data))
        except Exception as error:  # noqa: BLE001 - handed to the main thread
            statuses.put(error)

    threading.Thread(target=listen, daemon=True).start()
    attached = statuses.get(timeout=DEADLINE)
    check(isinstance(attached, dict) and attached["eventType"] == "event_stream_attached", f"{attached}")

    crashing = MarathonApp(
        id="/crashing",
        cmd="exit 1",
        cpus=0.1,
        mem=16,
        instances=1,
        backoff_seconds=1,
        backoff_factor=2,
        max_launch_delay_seconds=8,
    )
    client.create_app("/crashing", crashing)
    first_status = {}
    failed_at = {}
    started = time.monotonic()
    while len(first_status) < 4 and time.monotonic() - started < DEADLINE:
        try:
            event = statuses.get(timeout=1)
        except queue.Empty:
            continue
        if isinstance(event, Exception):
            raise event
        if event.get("appId") != "/crashing":
            continue
        at = datetime.datetime.strptime(event["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
        first_status.setdefault(event["taskId"], at)
        if event["taskStatus"] == "TASK_FAILED":
            failed_at[event["taskId"]] = at
    check(len(first_status) >= 4, f"four launches of the crashing app: {len(first_status)}")
    tasks = sorted(first_status, key=first_status.get)
    gaps = [
        (first_status[later] - failed_at[earlier]).total_seconds()
        for earlier, later in zip(tasks, tasks[1:])
        if earlier in failed_at
    ]
    check(len(gaps) == 3, f"each crash is seen failing: {gaps}")
    # Delays of 1, 2 and 4 s after each failure; launching adds, never subtracts.
    check(all(gap >= expected * 0.9 for gap, expected in zip(gaps, [1, 2, 4])), f"gaps {gaps}")
    app = client.get_app("/crashing")
    check(app.last_task_failure is not None, "the last failure is reported")
    say("backoff", gaps=gaps)
    client.reset_delay("/crashing")
    client.delete_app("/crashing", force=True)
    eventually("every app gone", lambda: not client.list_apps())


def failover(client, _args):
    """The leader dies mid-deployment; the deployment completes under the next leader."""
    app_id = "/failover"
    client.create_app(app_id, http_app(app_id, 3, "v1"))
    app = eventually("3 healthy instances", lambda: running_healthy(client, app_id, 3))
    eventually("the start deployment to finish", lambda: no_deployments(client, app_id))
    before = {task.id for task in app.tasks}
    # One extra instance at a time; each must turn healthy before an old one goes.
    rolling = http_app(
        app_id,
        3,
        "v2",
        upgrade_strategy=MarathonUpgradeStrategy(
            minimum_health_capacity=1.0, maximum_over_capacity=0.0
        ),
    )
    deployment = client.update_app(app_id, rolling)
    eventually(
        "the first replacement instance",
        lambda: [t for t in client.list_tasks(app_id) if t.id not in before],
    )
    wait_for_go("deploying", deployment=deployment["deploymentId"])

    def done():
        app = running_healthy(client, app_id, 3)
        if not app or {t.id for t in app.tasks} & before:
            return None
        return app if no_deployments(client, app_id) else None

    app = eventually("the deployment to finish under the new leader", done, deadline=120)
    check("v2" in app.cmd, "the new command is in place")
    say("completed", tasks=sorted(t.id for t in app.tasks))
    # Real processes outlive their agents: stop them before the harness stops the agents.
    client.delete_app(app_id)
    eventually("its tasks to be gone", lambda: not tasks_of(client, app_id))


def expect_422(what, call, path):
    try:
        call()
    except MarathonHttpError as error:
        check(error.status_code == 422, f"{what}: status {error.status_code}")
        details = getattr(error, "error_details", None) or []
        paths = [detail["path"] for detail in details]
        check(path in paths, f"{what}: the 422 names {path}: {paths}")
        say("rejected", what=what, status=error.status_code, paths=paths)
        return
    raise AssertionError(f"{what} was accepted")


def invalid(client, _args):
    """Invalid definitions get 422 naming the field, and change nothing."""
    valid = MarathonApp(id="/valid", cmd="sleep 600", cpus=0.1, mem=16, instances=0)
    client.create_app("/valid", valid)
    before = [a.id for a in client.list_apps()]
    cases = [
        ("/bad-cpus", MarathonApp(cmd="sleep 1", cpus=-1, mem=16), "/cpus"),
        (
            "/bad-constraint",
            MarathonApp(cmd="sleep 1", constraints=[MarathonConstraint("hostname", "SOMETIMES")]),
            "/constraints/0",
        ),
        ("/bad-instances", MarathonApp(cmd="sleep 1", instances=-2), "/instances"),
        (
            "/bad-upgrade",
            MarathonApp(
                cmd="sleep 1",
                upgrade_strategy=MarathonUpgradeStrategy(
                    minimum_health_capacity=1.5, maximum_over_capacity=0
                ),
            ),
            "/upgradeStrategy/minimumHealthCapacity",
        ),
    ]
    for app_id, app, path in cases:
        expect_422(app_id, lambda: client.create_app(app_id, app), path)
    expect_422("an invalid update", lambda: client.update_app("/valid", MarathonApp(cpus=-5)), "/cpus")
    try:
        client.create_app("/valid", MarathonApp(id="/valid", cmd="sleep 600"))
        raise AssertionError("creating an existing app was accepted")
    except ConflictError:
        pass
    check([a.id for a in client.list_apps()] == before, "nothing changed")
    check(client.get_app("/valid").cpus == 0.1, "the valid app kept its cpus")
    client.delete_app("/valid")
    say("invalid_done")


def docker(client, _args):
    """A bridged Docker app: its port mapping gets a host port, its HTTP health check goes
    through it, and the container answers there."""
    app = MarathonApp.from_json(
        {
            "id": "/docker/web",
            "cmd": "trap 'exit 0' TERM; echo corral > /www/index.html; "
            "httpd -f -p 8080 -h /www & while true; do sleep 0.1; done",
            "cpus": 0.2,
            "mem": 64,
            "instances": 1,
            "container": {
                "type": "DOCKER",
                "docker": {"image": "corral-test-busybox:latest", "network": "BRIDGE"},
                "portMappings": [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}],
            },
            "healthChecks": [
                {
                    "protocol": "HTTP",
                    "path": "/index.html",
                    "portIndex": 0,
                    "gracePeriodSeconds": 60,
                    "intervalSeconds": 1,
                    "timeoutSeconds": 2,
                    "maxConsecutiveFailures": 3,
                }
            ],
        }
    )
    client.create_app("/docker/web", app)
    app = eventually("a healthy container", lambda: running_healthy(client, "/docker/web", 1))
    task = app.tasks[0]
    check(len(task.ports) == 1, f"one host port: {task.ports}")
    with urllib.request.urlopen(f"http://127.0.0.1:{task.ports[0]}/index.html", timeout=5) as page:
        body = page.read().decode().strip()
    check(body == "corral", f"the container answers on its host port: {body!r}")
    say("docker", host_port=task.ports[0])
    client.delete_app("/docker/web")
    eventually("its task to be gone", lambda: not tasks_of(client, "/docker/web"))


SCENARIOS = {
    "lifecycle": lifecycle,
    "constraints": constraints,
    "health_and_backoff": health_and_backoff,
    "failover": failover,
    "invalid": invalid,
    "docker": docker,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--masters", required=True)
    parser.add_argument("--hosts", default="")
    args = parser.parse_args()
    client = MarathonClient(args.masters.split(","), timeout=10)
    SCENARIOS[args.scenario](client, args)
    say("ok")


if __name__ == "__main__":
    main()
