"""python -m runner run ceph_migrate.<workflow or action> key=value ... [options]

Runs the pack's real workflow (or one action) with the pack's real action classes. Gates are
answered by --approve GATE=yes|no|timeout, or asked on the terminal; --yes approves them all.
--config is a pack config file; --sandbox builds it from the running sandboxes. What the
actions keep in StackStorm's datastore (a tenant's mapping) is kept in
$CEPH_MIGRATE_LOCAL_DATASTORE (default ~/.local/state/ceph_migrate/datastore.json, mode 0600;
secrets stay in the run's memory).
"""
import argparse
import json
import os
import sys

import yaml

from runner.actions import DATASTORE_FILE, metadata, run_python_action
from runner.local import LocalRunner
from sandbox.pack_config import local_config

ANSWERS = {"yes": True, "y": True, "no": False, "n": False, "timeout": None}


def parse_value(text: str):
    """key=value values are YAML scalars: true, 3, null, [a, b] and plain strings."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a workflow or an action of the pack")
    run.add_argument("ref", help="e.g. ceph_migrate.migrate_volume")
    run.add_argument("params", nargs="*", help="key=value")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="pack config file (YAML)")
    source.add_argument("--sandbox", action="store_true", help="config of the sandboxes")
    run.add_argument("--approve", action="append", default=[], metavar="GATE=yes|no|timeout")
    run.add_argument("--yes", action="store_true", help="approve every gate")
    args = parser.parse_args(argv)

    config = local_config() if args.sandbox else yaml.safe_load(open(args.config))
    # what actions keep (a tenant's mapping) lasts from one run to the next, as in st2
    state = os.path.join(os.environ.get("XDG_STATE_HOME") or os.path.expanduser(
        "~/.local/state"), "ceph_migrate")
    os.makedirs(state, mode=0o700, exist_ok=True)
    os.environ.setdefault(DATASTORE_FILE, os.path.join(state, "datastore.json"))
    params = dict(p.split("=", 1) for p in args.params)
    params = {k: parse_value(v) for k, v in params.items()}
    answers = {}
    for item in args.approve:
        gate, _, value = item.partition("=")
        answers[gate] = ANSWERS[value.lower()]

    def answer(gate, params):
        if gate in answers:
            value = answers[gate]
        elif args.yes:
            value = True
        elif sys.stdin.isatty():
            question = ((params.get("schema") or {}).get("properties", {})
                        .get("approved", {}).get("description", "approve?"))
            reply = input("\n[%s, for %s] %s [y/n] " % (gate, params.get("route"), question))
            value = reply.strip().lower().startswith("y")
        else:
            value = None
        print("  gate %s answered: %s" % (gate, {True: "approved", False: "rejected",
                                                 None: "no answer"}[value]), flush=True)
        return None if value is None else {"approved": value}

    name = args.ref.split(".", 1)[1]
    if metadata(name)["runner_type"] != "orquesta":
        ok, result = run_python_action(name, config, params)
        print(json.dumps(result, indent=2, default=str))
        return 0 if ok else 1
    runner = LocalRunner(config, answer=answer, log=lambda line: print(line, flush=True))
    result = runner.run(args.ref, **params)
    print(json.dumps({"status": result.status, "output": result.output}, indent=2,
                     default=str))
    return 0 if result.status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
