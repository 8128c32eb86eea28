"""python -m runner run ceph_migrate.<workflow or action> key=value ... [options]

Runs the pack's real workflow (or one action) with the pack's real action classes. Gates are
answered by --approve GATE=yes|no|timeout, or asked on the terminal; --yes approves them all.
--config is a pack config file; --sandbox builds it from the running sandboxes.
"""
import argparse
import json
import os
import sys

import yaml

from runner.actions import metadata, run_python_action
from runner.local import LocalRunner

ANSWERS = {"yes": True, "y": True, "no": False, "n": False, "timeout": None}


def sandbox_config() -> dict:
    """The pack config for the Ceph sandbox and, when it runs, the OpenStack sandbox."""
    ceph = os.environ.get("CEPH_MIGRATE_SANDBOX_DIR", "/tmp/ceph_migrate_sandbox")
    with open(os.path.join(ceph, "ceph_migrate.yaml")) as handle:
        config = yaml.safe_load(handle)
    facts_path = os.path.join(os.environ.get("CEPH_MIGRATE_OPENSTACK_DIR",
                                             "/tmp/ceph_migrate_openstack"), "openstack.json")
    if os.path.exists(facts_path):
        with open(facts_path) as handle:
            config.update(openstack_config(json.load(handle)))
    return config


def openstack_config(facts: dict) -> dict:
    """The pack config keys for the two sandbox clouds (openstack.json facts): API access and
    where each cloud's notifications arrive."""
    clouds_yaml = facts["clouds_yaml"]
    config = {"source_cloud": {"cloud": "pa1-admin", "clouds_yaml": clouds_yaml},
              "destination_cloud": {"cloud": "ct1-admin", "clouds_yaml": clouds_yaml},
              "destination_glance_store": facts["clouds"]["ct1"]["glance"]["store_id"]}
    for role, cloud in (("source", "pa1"), ("destination", "ct1")):
        rabbit = facts["clouds"][cloud]["rabbit"]
        config["%s_notifications" % role] = {
            "host": rabbit["host"], "port": rabbit["port"], "vhost": rabbit["vhost"],
            "username": rabbit["user"], "password": rabbit["password"],
            "exchanges": sorted(set(rabbit["exchanges"].values()))}
    return config


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

    config = sandbox_config() if args.sandbox else yaml.safe_load(open(args.config))
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
