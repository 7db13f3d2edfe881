"""The unmodified `marathon` client with credentials, against one Corral master (the Rust
test gives it a follower) with access control enforced.

Usage: secured_clients.py --master URL --username U --password P --token TOKEN

It creates, reads, changes and deletes an app as the Basic user (`username`/`password`) and
again with `auth_token` (sent as `Authorization: token=...`), and checks that a client
without credentials is refused with a 401. Progress goes to stdout as JSON lines; exit
status 0 means every check held.
"""

import argparse
import collections
import collections.abc
import json
import time

# marathon 0.13.0 still uses `collections.Iterable`, which Python 3.10 removed.
collections.Iterable = collections.abc.Iterable  # type: ignore[attr-defined]

from marathon import MarathonClient  # noqa: E402
from marathon.exceptions import MarathonHttpError, NotFoundError  # noqa: E402
from marathon.models import MarathonApp  # noqa: E402

DEADLINE = 60.0


def say(step, **fields):
    print(json.dumps({"step": step, **fields}), flush=True)


def eventually(what, probe):
    started = time.monotonic()
    last = None
    while time.monotonic() - started < DEADLINE:
        try:
            last = probe()
        except (NotFoundError, MarathonHttpError) as error:
            last = error
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def round_trip(client, app_id, how):
    """Every kind of write a follower forwards, and a read it answers itself."""
    created = client.create_app(app_id, MarathonApp(cmd="sleep 600", cpus=0.1, mem=16, instances=0))
    assert created.id == app_id, created.id
    say("created", app=app_id, how=how)
    # Writes go to the leader; this follower answers reads from what it has applied, which
    # may lag the leader a moment.
    read = eventually(f"{app_id} on the follower", lambda: client.get_app(app_id))
    assert read.instances == 0, read.instances
    client.scale_app(app_id, instances=0, force=True)
    client.update_app(app_id, MarathonApp(cmd="sleep 900", cpus=0.1, mem=16, instances=0), force=True)
    eventually("the new command", lambda: client.get_app(app_id).cmd == "sleep 900")
    say("updated", app=app_id, how=how)
    client.delete_app(app_id, force=True)

    def gone():
        try:
            client.get_app(app_id)
            return False
        except NotFoundError:
            return True

    eventually(f"{app_id} deleted", gone)
    say("deleted", app=app_id, how=how)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--master", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()

    anonymous = MarathonClient([args.master], timeout=60)
    try:
        anonymous.create_app("/dev/anonymous", MarathonApp(cmd="sleep 1", cpus=0.1, mem=16, instances=0))
        raise AssertionError("a write without credentials was accepted")
    except MarathonHttpError as error:
        assert error.status_code == 401, error
    say("anonymous_refused")

    # A loaded test machine can take more than the client's default 10 s.
    basic = MarathonClient([args.master], username=args.username, password=args.password, timeout=60)
    round_trip(basic, "/dev/basic", "basic")
    token = MarathonClient([args.master], auth_token=args.token, timeout=60)
    round_trip(token, "/dev/token", "auth_token")
    say("ok")


if __name__ == "__main__":
    main()
