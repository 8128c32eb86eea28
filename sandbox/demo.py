#!/usr/bin/env python3
"""Migrate one data volume's RBD image from cluster ``ceph`` to ``cephpa1`` on the sandbox.

Runs the Ceph stage of procedure 1 with the pack's core, step by step, as the actions do:
plan and preflight, enable mirroring, wait for the replica, keep writing ("the guest is still
running"), final sync, copy into the destination Cinder pool, verify by sha256, disable
mirroring, and remove the source only because its verified copy is recorded.

  .venv/bin/python sandbox/demo.py [--mode snapshot|journal] [--size-mib 512] [--keep-source]
"""
import argparse
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "actions"))

import yaml  # noqa: E402

from lib import copying, mirroring, sync_check  # noqa: E402
from lib.plan import VolumeMigrationPlan, preflight  # noqa: E402
from lib.settings import SOURCE, Settings  # noqa: E402


def step(title, fn, show=lambda r: ""):
    started = time.monotonic()
    print("-> %s ..." % title, end=" ", flush=True)
    result = fn()
    took = time.monotonic() - started
    changed = result.get("changed") if isinstance(result, dict) else None
    print("%s%.1fs%s" % ({True: "changed, ", False: "unchanged, "}.get(changed, ""), took,
                         (" | " + show(result)) if show(result) else ""))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["snapshot", "journal"], default="snapshot")
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--keep-source", action="store_true")
    args = parser.parse_args()

    config_path = subprocess.run([sys.executable, str(REPO / "sandbox" / "ceph_sandbox.py"),
                                  "config"], capture_output=True, text=True).stdout.strip()
    if not config_path:
        print("the sandbox is not up: python3 sandbox/ceph_sandbox.py up", file=sys.stderr)
        return 1
    config = yaml.safe_load(Path(config_path).read_text())
    settings = Settings.from_config(dict(config, mirror_mode=args.mode))
    cluster = settings.source

    volume_id = str(uuid.uuid4())
    plan = VolumeMigrationPlan.build(settings, volume_id)
    source, replica, target = plan.source(settings), plan.replica(settings), plan.target(settings)
    print("Demo volume %s (%d MiB of random data), %s mode" % (volume_id, args.size_mib,
                                                               args.mode))

    def write(mib, offset=0):
        subprocess.run(["/usr/bin/python3", str(REPO / "sandbox" / "rbd_writer.py"), "--cluster",
                        cluster.name, "--conf", cluster.conf, "--id", cluster.client_id,
                        "--keyring", cluster.keyring, "--image", source.spec, "--mib", str(mib),
                        "--offset-mib", str(offset)], check=True)
        return {}

    def create():
        settings.rbd(SOURCE).run_text("create", source.spec, "--size", "%dM" % args.size_mib)
        return write(args.size_mib)

    step("create the source volume image %s" % source.spec, create)
    report = step("plan and preflight (read-only)", lambda: preflight(settings, plan),
                  lambda r: "all %d checks passed" % len(r["checks"]) if r["ok"] else
                  "BLOCKED: %s" % [c for c in r["checks"] if not c["ok"]])
    if not report["ok"]:
        return 1
    for stage in plan.stages():
        print("     %s" % stage)
    step("enable mirroring", lambda: mirroring.enable_mirroring(source, replica, plan.mode),
         lambda r: "global id %s" % r["global_id"])
    step("wait until the replica is in sync",
         lambda: sync_check.wait_for_sync(plan.mode, source, replica, 600,
                                          settings.poll_interval),
         lambda r: r["detail"])
    step("the guest writes 64 MiB more", lambda: write(64, offset=args.size_mib // 4))
    if plan.mode == "snapshot":
        step("final sync: mirror snapshot", lambda: mirroring.mirror_snapshot(source),
             lambda r: "snapshot %s" % r["snapshot_id"])
    step("wait for the final sync",
         lambda: sync_check.wait_for_sync(plan.mode, source, replica, 600,
                                          settings.poll_interval),
         lambda r: r["detail"])
    copy = step("copy the replica into %s" % target.spec,
                lambda: copying.copy_image(replica, target, settings.copy_features,
                                           settings.copy_timeout),
                lambda r: "%s MB/s, features %s" % (r.get("mb_per_second"),
                                                    ",".join(r["target"]["features"])))
    verified = step("verify: sha256 of source and copy",
                    lambda: copying.verify_copy(source, target, settings.copy_timeout),
                    lambda r: "%s... identical (%d bytes)" % (r["sha256"][:16], r["bytes"]))
    step("disable mirroring (replica removed by rbd-mirror)",
         lambda: mirroring.disable_mirroring(source))
    step("restore the features mirroring added", lambda: mirroring.restore_features(source))
    if not args.keep_source:
        step("remove the source (allowed: verified copy recorded)",
             lambda: copying.remove_image(source, verified_copy=target))
    print("\nMigrated %s:%s -> %s:%s, %d bytes, sha256 %s, copy %.1fs." % (
        cluster.name, source.spec, settings.destination.name, target.spec, verified["bytes"],
        verified["sha256"], copy["seconds"]))
    print("Next (issue 3): cinder manage of %s at the destination. Stop the sandbox with: "
          "python3 sandbox/ceph_sandbox.py down" % target.spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
