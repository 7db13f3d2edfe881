"""A stand-in for mesosphere/marathon-autoscale (github.com/mesosphere/marathon-autoscale).

That script is not on PyPI, so this one makes the same HTTP calls, the way it makes them,
against a DC/OS-shaped master (Corral serves that shape):

1. GET  {master}/service/marathon/v2/apps/{app}           -> the app's instances and its
   tasks (id, slaveId), without any `embed` parameter.
2. GET  {master}/slave/{slaveId}/monitor/statistics        -> twice per agent, a snapshot
   apart; each task's entry is the one whose executor_id is the task id. CPU % is the
   growth of cpus_user_time_secs + cpus_system_time_secs over the growth of the
   statistics' timestamp; memory % is mem_rss_bytes over mem_limit_bytes. Both are
   averaged over the app's tasks.
3. When the average CPU or memory is above its threshold ("or" mode): target =
   ceil(instances * multiplier), capped at --max-instances, and
   PUT {master}/service/marathon/v2/apps/{app} {"instances": target}
   with Content-Type application/json and no `force` parameter.

It evaluates every --interval seconds until it has sent one PUT (or --deadline passes), then
prints one JSON line: the averages, the counts and the PUT's status and body. Exit status
0 once a PUT was sent (whatever it answered), 2 when the load never crossed a threshold.

Usage: marathon_autoscale_standin.py --master http://127.0.0.1:5050 --app burn
       [--max-cpu-percent 50] [--max-mem-percent 90] [--multiplier 2] [--max-instances 3]
"""
import argparse
import json
import math
import sys
import time

import requests

APPS = "/service/marathon/v2/apps/"
HEADERS = {"Content-Type": "application/json"}


def rest(method, url, **kwargs):
    response = requests.request(method, url, headers=HEADERS, timeout=10, **kwargs)
    return response


def app_tasks(master, app):
    """The app's instance count and {task id: agent id}."""
    response = rest("get", master + APPS + app)
    response.raise_for_status()
    body = response.json()["app"]
    return body["instances"], {task["id"]: task["slaveId"] for task in body.get("tasks", [])}


def agent_snapshot(master, agent_id):
    response = rest("get", f"{master}/slave/{agent_id}/monitor/statistics")
    response.raise_for_status()
    return {entry["executor_id"]: entry["statistics"] for entry in response.json()}


def usage(master, tasks, pause):
    """Average CPU % and memory % over the tasks with two distinct samples, or None."""
    agents = sorted(set(tasks.values()))
    first = {agent: agent_snapshot(master, agent) for agent in agents}
    time.sleep(pause)
    second = {agent: agent_snapshot(master, agent) for agent in agents}
    cpu, mem = [], []
    for task_id, agent in tasks.items():
        before, after = first[agent].get(task_id), second[agent].get(task_id)
        if before is None or after is None:
            continue
        elapsed = after["timestamp"] - before["timestamp"]
        if elapsed <= 0:
            continue
        used = (after["cpus_user_time_secs"] + after["cpus_system_time_secs"]
                - before["cpus_user_time_secs"] - before["cpus_system_time_secs"])
        cpu.append(100.0 * used / elapsed)
        limit = after.get("mem_limit_bytes") or 0
        if limit > 0:
            mem.append(100.0 * after["mem_rss_bytes"] / limit)
    if not cpu:
        return None
    return sum(cpu) / len(cpu), (sum(mem) / len(mem) if mem else 0.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", required=True)
    parser.add_argument("--app", required=True, help="the app id without its leading /")
    parser.add_argument("--max-cpu-percent", type=float, default=50.0)
    parser.add_argument("--max-mem-percent", type=float, default=90.0)
    parser.add_argument("--multiplier", type=float, default=2.0)
    parser.add_argument("--max-instances", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--deadline", type=float, default=60.0)
    args = parser.parse_args()
    master = args.master.rstrip("/")
    give_up = time.monotonic() + args.deadline
    while time.monotonic() < give_up:
        instances, tasks = app_tasks(master, args.app)
        measured = usage(master, tasks, args.interval) if tasks else None
        if measured is None:
            print(json.dumps({"unmeasured": tasks}), file=sys.stderr)
            time.sleep(args.interval)
            continue
        cpu, mem = measured
        print(json.dumps({"cpu": cpu, "mem": mem, "instances": instances}), file=sys.stderr)
        if cpu <= args.max_cpu_percent and mem <= args.max_mem_percent:
            continue
        target = min(math.ceil(instances * args.multiplier), args.max_instances)
        response = rest("put", master + APPS + args.app, data=json.dumps({"instances": target}))
        try:
            body = response.json()
        except ValueError:
            body = response.text
        print(json.dumps({"cpu": cpu, "mem": mem, "instances": instances, "target": target,
                          "status": response.status_code, "body": body}))
        return 0
    print(json.dumps({"error": f"the load never crossed a threshold in {args.deadline}s"}))
    return 2


if __name__ == "__main__":
    sys.exit(main())
