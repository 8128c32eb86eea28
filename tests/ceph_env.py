"""The real Ceph sandbox for tests: fixtures, a strict action runner and cluster fingerprints.

The session fixture starts the project's own sandbox (``sandbox/ceph_sandbox.py up``, idempotent)
and stops it again at the end if it started it. ``CEPH_MIGRATE_TEST_CONFIG`` points the tests at
an already running pair of clusters instead (a pack config file).
"""
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import pytest
import yaml

from st2_support import action_metadata, get_action_instance
from runner.actions import parameters
from lib.ceph_cli import CephCli
from lib.errors import CephMigrateError
from lib.settings import DESTINATION, SOURCE, Settings

REPO = Path(__file__).resolve().parents[1]
SANDBOX = REPO / "sandbox" / "ceph_sandbox.py"
sys.path.insert(0, str(SANDBOX.parent))
import rbd_writer  # noqa: E402  (the sandbox's random-data writer)


def _sandbox(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SANDBOX)] + list(args), capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="session")
def ceph_config() -> Dict[str, Any]:
    """The pack config pointing at two real clusters with rbd-mirror running."""
    explicit = os.environ.get("CEPH_MIGRATE_TEST_CONFIG")
    if explicit:
        yield yaml.safe_load(Path(explicit).read_text())
        return
    was_up = _sandbox("status").returncode == 0
    up = _sandbox("up")
    assert up.returncode == 0, "sandbox did not come up:\n%s\n%s" % (up.stdout, up.stderr)
    path = _sandbox("config").stdout.strip()
    yield yaml.safe_load(Path(path).read_text())
    if not was_up and not os.environ.get("CEPH_MIGRATE_KEEP_SANDBOX"):
        _sandbox("down", "--wipe")


@pytest.fixture(scope="session")
def settings(ceph_config) -> Settings:
    return Settings.from_config(ceph_config)


# -- running actions the way StackStorm does -------------------------------------------------
@dataclass
class ActionRun:
    ok: bool
    result: Any


def run_action(action: str, config: Dict[str, Any], /, **params: Any) -> ActionRun:
    """Run an action as st2 would: config defaults filled, parameters validated and defaulted."""
    return _ran(get_action_instance(action, config=config).run(
        **parameters(action_metadata(action), params)))


def run_unchecked(action: str, config: Dict[str, Any], /, **params: Any) -> ActionRun:
    """Run an action with parameters StackStorm would have refused (its metadata's defaults for
    the rest): the pack's own checks, the second line behind the parameter patterns."""
    specs = action_metadata(action).get("parameters") or {}
    values = {name: spec.get("default") for name, spec in specs.items()
              if name not in ("timeout", "env", "debug", "log_level")}
    values.update(params)
    return _ran(get_action_instance(action, config=config).run(**values))


def _ran(result: Any) -> ActionRun:
    if isinstance(result, tuple):
        ok, result = result
        return ActionRun(bool(ok), result)
    return ActionRun(True, result)


# -- test images ------------------------------------------------------------------------------
def write_random(settings: Settings, side: str, spec: str, mib: int, offset_mib: int = 0,
                 hold: float = 0) -> None:
    """Random bytes into ``spec`` through librbd (Debian's python3-rbd), like a guest."""
    rbd_writer.write_random(settings.cluster(side), spec, mib, offset_mib, hold)


def new_volume_id() -> str:
    return str(uuid.uuid4())


def create_volume(settings: Settings, size_mib: int, fill_mib: Optional[int] = None) -> str:
    """A source image ``volume-<uuid>`` in the mirrored Cinder pool, full of random data."""
    vid = new_volume_id()
    spec = "%s/volume-%s" % (settings.pools.mirrored_cinder, vid)
    settings.rbd(SOURCE).run_text("create", spec, "--size", "%dM" % size_mib)
    write_random(settings, SOURCE, spec, fill_mib if fill_mib is not None else size_mib)
    return vid


def purge_image(settings: Settings, side: str, pool: str, image: str) -> None:
    """Test cleanup: whatever state the image is in, make it gone (errors ignored)."""
    cli = settings.rbd(side)
    for args in (["mirror", "image", "disable", "--force", "%s/%s" % (pool, image)],
                 ["snap", "unprotect", "%s/%s@snap" % (pool, image)],
                 ["snap", "purge", "--no-progress", "%s/%s" % (pool, image)],
                 ["rm", "--no-progress", "%s/%s" % (pool, image)]):
        try:
            cli.run_text(*args)
        except CephMigrateError:
            pass


def fingerprint(settings: Settings) -> Dict[str, Any]:
    """Everything a step could change on both clusters: images, sizes, features, mirroring,
    snapshots and image metadata in every configured pool."""
    pools = {SOURCE: [settings.pools.mirrored_cinder, settings.pools.mirrored_glance],
             DESTINATION: [settings.pools.mirrored_cinder, settings.pools.mirrored_glance,
                           settings.pools.destination_cinder, settings.pools.destination_glance]}
    state: Dict[str, Any] = {}
    for side, side_pools in pools.items():
        cli: CephCli = settings.rbd(side)
        for pool in side_pools:
            for entry in cli.run("ls", "-l", pool) or []:
                spec = "%s/%s" % (pool, entry["image"])
                key = "%s:%s" % (side, spec + ("@" + entry["snapshot"] if "snapshot" in entry
                                               else ""))
                if "snapshot" in entry:
                    state[key] = {"protected": entry.get("protected")}
                    continue
                info = cli.run("info", spec)
                state[key] = {
                    "size": info["size"], "features": info["features"],
                    "mirroring": info.get("mirroring"),
                    "meta": cli.run("image-meta", "list", spec) or {},
                    "snaps": sorted(s["name"] for s in cli.run("snap", "ls", "--all", spec) or []
                                    if s["namespace"]["type"] != "mirror")}
    return json.loads(json.dumps(state, sort_keys=True))
