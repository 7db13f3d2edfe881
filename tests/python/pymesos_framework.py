"""A real Mesos framework written with the unmodified pymesos client, driven by Corral's
integration tests. It prints one JSON object per line on stdout for every callback, so the
test can follow what the framework saw.

Usage: pymesos_framework.py --master HOST:PORT --tasks N [--hold-acks]
                            [--principal P --secret S] [--marker WORD]

With --hold-acks the framework does not acknowledge status updates until it has
re-registered with a new master, so the test can check that unacknowledged updates are
delivered again after a failover. With --principal and --secret pymesos sends them as HTTP
Basic on every call (and as FrameworkInfo.principal). Each task's command carries --marker
(default corral-pymesos-test) so a test can find its processes, and only its own.
"""

import argparse
import json
import sys
import threading

from pymesos import MesosSchedulerDriver, Scheduler


def emit(kind, **fields):
    fields["kind"] = kind
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


def scalar(offer, name):
    return sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == name and r["type"] == "SCALAR")


class TestScheduler(Scheduler):
    def __init__(self, tasks, hold_acks, marker):
        self.wanted = tasks
        self.marker = marker
        self.launched = 0
        self.hold_acks = hold_acks
        self.reregistered_once = False
        self.held = []
        self.lock = threading.Lock()

    def registered(self, driver, framework_id, master_info):
        emit("registered", framework_id=framework_id["value"])

    def reregistered(self, driver, master_info):
        emit("reregistered")
        with self.lock:
            self.reregistered_once = True
            held, self.held = self.held, []
        # Updates held before the failover arrive again from the new master and are
        # acknowledged then; these stale copies are simply dropped.
        emit("released_held_acks", count=len(held))

    def disconnected(self, driver):
        emit("disconnected")

    def resourceOffers(self, driver, offers):
        for offer in offers:
            emit("offer", offer_id=offer["id"]["value"], agent_id=offer["agent_id"]["value"])
            with self.lock:
                remaining = self.wanted - self.launched
            cpus, mem = scalar(offer, "cpus"), scalar(offer, "mem")
            count = 0
            tasks = []
            while count < remaining and cpus >= 0.1 and mem >= 32:
                with self.lock:
                    self.launched += 1
                    number = self.launched
                task_id = "task-%d" % number
                tasks.append({
                    "task_id": {"value": task_id},
                    "agent_id": {"value": offer["agent_id"]["value"]},
                    "name": task_id,
                    "command": {"value": "sleep 600 # " + self.marker},
                    "resources": [
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                        {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
                    ],
                })
                cpus -= 0.1
                mem -= 32
                count += 1
            if tasks:
                emit("launch", offer_id=offer["id"]["value"], tasks=[t["task_id"]["value"] for t in tasks])
                driver.launchTasks(offer["id"], tasks)
            else:
                driver.declineOffer(offer["id"], {"refuse_seconds": 1})

    def offerRescinded(self, driver, offer_id):
        emit("rescinded", offer_id=offer_id["value"])

    def statusUpdate(self, driver, update):
        uuid = update.get("uuid")
        emit("update", task_id=update["task_id"]["value"], state=update["state"], uuid=uuid,
             reason=update.get("reason"), source=update.get("source"))
        if uuid is None:
            return
        with self.lock:
            hold = self.hold_acks and not self.reregistered_once
            if hold:
                self.held.append(update)
        if hold:
            emit("held_ack", task_id=update["task_id"]["value"], uuid=uuid)
            return
        driver.acknowledgeStatusUpdate(update)
        emit("acknowledged", task_id=update["task_id"]["value"], uuid=uuid)

    def error(self, driver, message):
        emit("error", message=message)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--master", required=True)
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--hold-acks", action="store_true")
    parser.add_argument("--principal")
    parser.add_argument("--secret")
    parser.add_argument("--marker", default="corral-pymesos-test")
    args = parser.parse_args()
    framework = {
        "user": "root",
        "name": "pymesos-compat",
        "failover_timeout": 300.0,
        "checkpoint": True,
        "capabilities": [{"type": "PARTITION_AWARE"}],
    }
    scheduler = TestScheduler(args.tasks, args.hold_acks, args.marker)
    driver = MesosSchedulerDriver(scheduler, framework, args.master, use_addict=False, implicit_acknowledgements=False,
                                  principal=args.principal, secret=args.secret)
    command_thread = threading.Thread(target=read_commands, args=(driver,), daemon=True)
    command_thread.start()
    driver.run()


def read_commands(driver):
    """The test steers the framework through stdin: 'reconcile', 'kill TASK', 'stop'."""
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "reconcile":
            driver.reconcileTasks([])
            emit("reconcile_sent")
        elif words[0] == "kill" and len(words) == 2:
            driver.killTask({"value": words[1]})
            emit("kill_sent", task_id=words[1])
        elif words[0] == "stop":
            driver.stop()
            return


if __name__ == "__main__":
    main()
