#!/usr/bin/env python3
"""Ceph sandbox for ceph_migrate: two single-host Ceph Pacific clusters with one-way rbd-mirror.

    ceph     (source)      mon v2 3300+OFF v1 6789+OFF, daemons on 6800+OFF..6849+OFF
    cephpa1  (destination) mon v2 3301+OFF v1 6790+OFF, daemons on 6850+OFF..6899+OFF

Each cluster: mon "a", mgr "x", one BlueStore OSD on a 10 GiB sparse file, size-1 pools, all on
127.0.0.1. Pools oscinder and vms (image-mode mirroring) and osglance (pool-mode mirroring) exist
on both, cinder-ceph-pa1-cl1 and glance-ct1-cl1 on cephpa1 only. rbd-mirror (client.rbd-mirror.a)
runs against cephpa1 and pulls from ceph (peer bootstrap, direction rx-only). The pack talks to both
clusters as the least-privilege user client.ceph-migrate (see PACK_CAPS).

    ceph_sandbox.py up                  install packages if needed, start (idempotent)
    ceph_sandbox.py down [--wipe] [--fast]
    ceph_sandbox.py status [--json]     exit 0 when everything is healthy
    ceph_sandbox.py config              path of the generated pack config

Environment: CEPH_MIGRATE_SANDBOX_DIR (state dir, default /tmp/ceph_migrate_sandbox; keep it
short, admin socket paths must stay under 108 bytes) and CEPH_MIGRATE_SANDBOX_PORT_OFFSET
(default 0, added to every port so that several sandboxes can share a host).

Nothing in /etc/ceph is used: clients run with `--cluster NAME` and
CEPH_CONF='<state>/$cluster.conf' (literal $cluster, Ceph expands it; see <state>/env.sh).
Daemons are started by PID and stopped by PID only, never by process name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sys
import uuid
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, List, Optional, Sequence, Tuple

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:   # sandbox_common.py sits beside this file, also when it is imported
    sys.path.insert(0, _HERE)
from sandbox_common import (  # noqa: E402
    Clock, Recorded, SandboxError, abort_others, all_alive, apt_get_install, claim_state_dir,
    cli_parser, conclude, drop_recorded, in_parallel, is_alive, json_or_none, print_config,
    print_status, StateDir,
    read_json, read_recorded, run, run_command, run_logged, start_recorded, stop_listed,
    stop_recorded, stopped_on_failure, verdict, wait_for, wipe_state_dir, write_file)

SOURCE = "ceph"
DESTINATION = "cephpa1"
CLUSTERS = (SOURCE, DESTINATION)
MIRROR_ID = "rbd-mirror.a"
PACK_ID = "ceph-migrate"

# Least privilege for the pack: the plain rbd profiles are enough, no extra caps needed.
# Verified as client.ceph-migrate against this sandbox (Pacific 16.2.15), on both clusters:
# create, bench, info, ls -l, du, status, rename, rm, trash mv/ls, lock add/ls/rm, snap create/ls
# --all/purge, feature enable/disable journaling, journal status/info, image-meta set/get/list/
# remove, cp --image-feature, deep cp, export, mirror image enable (snapshot and journal)/disable
# (also --force)/status/snapshot/demote/promote/resync, mirror pool info (also --all)/status
# --verbose, and through mgr 'profile rbd' the rbd_support module (mirror snapshot schedule
# add/rm). Not caps problems (same as client.admin): `promote` right after the demote snapshot
# was copied fails with EROFS (30) for ~1.5-2 s while rbd-mirror still holds the image (retry);
# `mirror snapshot schedule ls` / `trash purge schedule ls` exit 2 when no schedule exists.
PACK_CAPS = (("mon", "profile rbd"), ("osd", "profile rbd"), ("mgr", "profile rbd"))
MIRROR_CAPS = (("mon", "profile rbd-mirror"), ("osd", "profile rbd"))

# pool -> rbd mirror pool mode; vms holds Nova's server disks (<server uuid>_disk...)
MIRRORED_POOLS = {"oscinder": "image", "osglance": "pool", "vms": "image"}
DESTINATION_ONLY_POOLS = ("cinder-ceph-pa1-cl1", "glance-ct1-cl1")

REQUIRED_BINARIES = ("ceph-mon", "ceph-osd", "ceph-mgr", "ceph", "rbd", "rbd-mirror",
                     "ceph-authtool", "monmaptool")
APT_PACKAGES = ("ceph-mon", "ceph-osd", "ceph-mgr", "ceph-common", "rbd-mirror")

# sparse: larger for benchmarks (CEPH_MIGRATE_OSD_GIB=40 for 8 GiB volumes)
OSD_BLOCK_BYTES = int(os.environ.get("CEPH_MIGRATE_OSD_GIB") or 10) * 1024 ** 3
PG_NUM = 8
HEALTH_TIMEOUT = 180.0
MIRROR_TIMEOUT = 120.0
# Seconds a group of daemons gets to exit on SIGTERM before SIGKILL (usually < 1 s, up to ~2 s).
STOP_GRACE = {"rbd-mirror": 5.0, "ceph-mgr": 5.0, "ceph-osd": 3.0, "ceph-mon": 3.0}
STOP_ORDER = (("rbd-mirror", "ceph-mgr"), ("ceph-osd",), ("ceph-mon",))
MARKER = ".ceph_migrate_sandbox"
UNIX_PATH_MAX = 107


# --------------------------------------------------------------------------- layout

@dataclass(frozen=True)
class ClusterSpec:
    """Name, ports and pools of one sandbox cluster."""
    name: str
    role: str
    mon_v2: int
    mon_v1: int
    port_min: int
    port_max: int
    pools: Tuple[str, ...]

    @property
    def mon_host(self) -> str:
        return "[v2:127.0.0.1:%d,v1:127.0.0.1:%d]" % (self.mon_v2, self.mon_v1)


def port_offset() -> int:
    """CEPH_MIGRATE_SANDBOX_PORT_OFFSET, checked so that every derived port is valid."""
    raw = os.environ.get("CEPH_MIGRATE_SANDBOX_PORT_OFFSET", "0").strip() or "0"
    try:
        off = int(raw)
    except ValueError:
        raise SandboxError("CEPH_MIGRATE_SANDBOX_PORT_OFFSET is not an integer: %r" % raw)
    if off < 0 or 6899 + off > 65535:
        raise SandboxError("CEPH_MIGRATE_SANDBOX_PORT_OFFSET out of range: %d" % off)
    return off


def cluster_specs(offset: int) -> List[ClusterSpec]:
    """Both clusters; distinct ports so they can run side by side on 127.0.0.1."""
    mirrored = tuple(MIRRORED_POOLS)
    return [
        ClusterSpec(SOURCE, "source", 3300 + offset, 6789 + offset,
                    6800 + offset, 6849 + offset, mirrored),
        ClusterSpec(DESTINATION, "destination", 3301 + offset, 6790 + offset,
                    6850 + offset, 6899 + offset, mirrored + DESTINATION_ONLY_POOLS),
    ]


@dataclass(frozen=True)
class Paths(StateDir):
    """Every file the sandbox owns, all below one state dir."""
    MARKER: ClassVar[str] = MARKER

    @property
    def env_sh(self) -> str:
        return os.path.join(self.root, "env.sh")

    @property
    def pack_config(self) -> str:
        return os.path.join(self.root, "ceph_migrate.yaml")

    @property
    def facts(self) -> str:
        return os.path.join(self.root, "sandbox.json")

    @property
    def token(self) -> str:
        return os.path.join(self.root, "%s.token" % SOURCE)

    @property
    def ceph_conf_env(self) -> str:
        """Value for CEPH_CONF: Ceph substitutes $cluster itself."""
        return os.path.join(self.root, "$cluster.conf")

    def conf(self, cluster: str) -> str:
        return os.path.join(self.root, "%s.conf" % cluster)

    def cluster_dir(self, cluster: str) -> str:
        return os.path.join(self.root, cluster)

    def sub(self, cluster: str, *parts: str) -> str:
        return os.path.join(self.root, cluster, *parts)

    def keyring(self, cluster: str, user: str) -> str:
        """Keyring of client.USER, named like Ceph's default: <cluster>.client.<user>.keyring."""
        return self.sub(cluster, "%s.client.%s.keyring" % (cluster, user))

    @property
    def mirror_asok(self) -> str:
        return self.sub(DESTINATION, "run", "%s-client.%s.asok" % (DESTINATION, MIRROR_ID))


def paths(root: Optional[str] = None) -> Paths:
    """Sandbox paths in ROOT, else $CEPH_MIGRATE_SANDBOX_DIR, else /tmp/ceph_migrate_sandbox."""
    root = root or os.environ.get("CEPH_MIGRATE_SANDBOX_DIR") or "/tmp/ceph_migrate_sandbox"
    return Paths(os.path.abspath(root))


# --------------------------------------------------------------------------- ceph and rbd commands

def ceph_argv(p: Paths, cluster: str, *args: str, connect_timeout: int = 10) -> List[str]:
    """`ceph` as client.admin of CLUSTER (admin keyring comes from the conf's [client])."""
    return ["ceph", "--cluster", cluster, "-c", p.conf(cluster),
            "--connect-timeout", str(connect_timeout)] + list(args)


def rbd_argv(p: Paths, cluster: str, *args: str) -> List[str]:
    """`rbd` as client.admin of CLUSTER."""
    return ["rbd", "--cluster", cluster, "-c", p.conf(cluster)] + list(args)


# --------------------------------------------------------------------------- packages

def missing_binaries() -> List[str]:
    return [b for b in REQUIRED_BINARIES if shutil.which(b) is None]


def ensure_packages(clock: Clock) -> None:
    """Install Debian's Ceph packages when a binary is missing (fresh machine)."""
    if not missing_binaries():
        return
    clock.log("installing %s (missing: %s)"
              % (" ".join(APT_PACKAGES), " ".join(missing_binaries())))
    apt_get_install(APT_PACKAGES, missing_binaries)
    clock.log("packages installed")


# --------------------------------------------------------------------------- daemons / pids

@dataclass(frozen=True)
class Daemon(Recorded):
    """One line of <state>/pids: 'PID NAME CLUSTER'."""

    @property
    def cluster(self) -> str:
        return self.group

    @property
    def binary(self) -> str:
        """'ceph-osd.0' -> 'ceph-osd', 'rbd-mirror.a' -> 'rbd-mirror'."""
        return self.kind


def read_pids(p: Paths) -> List[Daemon]:
    """Recorded daemons; a missing or empty pid file means nothing runs."""
    return read_recorded(p.pids, Daemon)


def _runs_binary(d: Daemon, argv: List[str]) -> bool:
    """ARGV is d's: daemons are exec'd directly (no wrapper), so argv[0] is the binary."""
    return bool(argv) and os.path.basename(argv[0]) == d.binary


def daemon_alive(d: Daemon) -> bool:
    """True when PID runs and is still the recorded daemon (not a reused PID)."""
    return is_alive(d, _runs_binary)


def start_daemon(p: Paths, cluster: str, name: str, argv: Sequence[str],
                 extra_env: Optional[Dict[str, str]] = None) -> Daemon:
    """Start argv in the foreground (-f: Popen's pid is the daemon's own) in its own session,
    record the daemon's PID."""
    return start_recorded(p.pids, Daemon, cluster, name, list(argv) + ["-f"],
                          p.sub(cluster, "log", "%s.stdout" % name), p.sub(cluster, "run"),
                          extra_env)


def stop_daemons(daemons: Sequence[Daemon], fast: bool = False) -> None:
    """Stop exactly these PIDs: rbd-mirror and mgr first, then the OSDs, then the mons.

    rbd-mirror hangs in shutdown once the OSDs are gone, and an OSD whose mon is gone waits 5 s
    before exiting, hence the order. fast: SIGKILL everything at once (data is throw-away)."""
    stop_recorded(daemons, () if fast else STOP_ORDER, STOP_GRACE, _runs_binary, log=print)


def wipe_state(p: Paths) -> None:
    """Delete the state dir, but only if this script created it (marker file) or it is empty."""
    wipe_state_dir(p.root, p.marker, "a sandbox")


# --------------------------------------------------------------------------- health checks

def _json_status(argv: List[str]) -> Any:
    """A status command's JSON, or why there is none. A command that hangs (a daemon just
    started, a freshly booted machine) is "not yet", never a failed bring-up: the callers
    poll until their own deadline."""
    try:
        return json_or_none(run(argv, timeout=20, check=False)) or "no JSON"
    except SandboxError as exc:
        return str(exc)


def cluster_health(p: Paths, cluster: str) -> Dict[str, Any]:
    """HEALTH_OK, the single OSD up, a mgr available and every PG active+clean."""
    st = _json_status(ceph_argv(p, cluster, "status", "--format", "json"))
    if not isinstance(st, dict):
        return {"ok": False, "reason": "ceph status failed: %s" % st}
    health = st.get("health", {}).get("status", "?")
    osd = st.get("osdmap", {})
    osd = osd.get("osdmap", osd)   # older releases nest it once more
    pgs = st.get("pgmap", {})
    states = pgs.get("pgs_by_state", [])
    clean = sum(s.get("count", 0) for s in states if s.get("state_name") == "active+clean")
    info = {
        "health": health,
        "osds_up": osd.get("num_up_osds", 0),
        "mgr_available": bool(st.get("mgrmap", {}).get("available")),
        "pgs": pgs.get("num_pgs", 0),
        "pgs_active_clean": clean,
    }
    problems = []
    if health != "HEALTH_OK":
        problems.append(health)
    if info["osds_up"] != 1:
        problems.append("%d osds up" % info["osds_up"])
    if not info["mgr_available"]:
        problems.append("mgr not available")
    if clean != info["pgs"]:
        problems.append("%d/%d pgs active+clean" % (clean, info["pgs"]))
    info["ok"] = not problems
    info["reason"] = ", ".join(problems) or "ok"
    return info


def mirror_health(p: Paths, pool: str) -> Dict[str, Any]:
    """rbd-mirror on the destination: daemon_health OK and a healthy leader for POOL."""
    st = _json_status(rbd_argv(p, DESTINATION, "mirror", "pool", "status", pool, "--verbose",
                               "--format", "json"))
    if not isinstance(st, dict):
        return {"ok": False, "reason": "rbd mirror pool status failed: %s" % st,
                "daemon_health": "?", "leader": None}
    daemons = st.get("daemons", [])
    leader = next((d for d in daemons if d.get("leader") and d.get("health") == "OK"), None)
    health = st.get("summary", {}).get("daemon_health", "?")
    ok = health == "OK" and leader is not None
    return {"ok": ok, "daemon_health": health,
            "leader": leader.get("instance_id") if leader else None,
            "reason": "ok" if ok else "daemon_health %s, leader %s" % (health, bool(leader))}


def status(p: Optional[Paths] = None) -> Dict[str, Any]:
    """Everything `status` reports, as a dict; 'ok' is True only when all is healthy."""
    p = p or paths()
    daemons = read_pids(p)
    report: Dict[str, Any] = {
        "state_dir": p.root,
        "daemons": [{"pid": d.pid, "name": d.name, "cluster": d.cluster, "alive": daemon_alive(d)}
                    for d in daemons],
        "clusters": {},
        "rbd_mirror": {},
    }
    if not daemons:
        return conclude(report, ["not up (no daemons recorded)"])
    checks: List[Callable[[], Any]] = [lambda c=c: cluster_health(p, c) for c in CLUSTERS]
    checks += [lambda pool=pool: mirror_health(p, pool) for pool in MIRRORED_POOLS]
    results = in_parallel(checks)
    report["clusters"] = dict(zip(CLUSTERS, results[:len(CLUSTERS)]))
    report["rbd_mirror"] = dict(zip(MIRRORED_POOLS, results[len(CLUSTERS):]))
    problems = ["%s/%s dead" % (d["name"], d["cluster"])
                for d in report["daemons"] if not d["alive"]]
    problems += ["%s: %s" % (c, i["reason"]) for c, i in report["clusters"].items() if not i["ok"]]
    problems += ["rbd-mirror %s: %s" % (pool, i["reason"])
                 for pool, i in report["rbd_mirror"].items() if not i["ok"]]
    return conclude(report, problems)


def format_status(report: Dict[str, Any]) -> str:
    """Short human summary of status()."""
    lines = ["state dir: %s" % report["state_dir"]]
    for name, c in report["clusters"].items():
        if "health" in c:
            lines.append("%-8s %-11s osd up %d, mgr %s, pgs %d/%d active+clean"
                         % (name, c["health"], c["osds_up"],
                            "available" if c["mgr_available"] else "NOT available",
                            c["pgs_active_clean"], c["pgs"]))
        else:
            lines.append("%-8s %s" % (name, c["reason"]))
    for pool, m in report["rbd_mirror"].items():
        lines.append("rbd-mirror %-9s daemon health %s, leader %s"
                     % (pool, m["daemon_health"], m["leader"] or "NONE"))
    alive = [d for d in report["daemons"] if d["alive"]]
    lines.append("daemons: %d/%d alive" % (len(alive), len(report["daemons"])))
    for d in report["daemons"]:
        lines.append("  %7d %-8s %-13s %s" % (d["pid"], d["cluster"], d["name"],
                                              "alive" if d["alive"] else "DEAD"))
    lines.append(verdict(report))
    return "\n".join(lines)


def daemons_running(p: Paths) -> bool:
    """Cheap check: daemons recorded and all alive (no cluster round trip)."""
    return all_alive(read_pids(p), _runs_binary)


# --------------------------------------------------------------------------- bootstrap

def render_conf(p: Paths, spec: ClusterSpec, fsid: str) -> str:
    """ceph.conf of one cluster. Everything (data, logs, sockets) stays inside the state dir.

    keyring goes under [client] (admin), never [global] (daemons would pick it up); per-user
    sections point at their own keyring. Generic clients get no admin socket: concurrent rbd
    processes would fight over one path."""
    c = spec.name
    d = p.cluster_dir(c)
    per_daemon = [
        "log file = %s/log/$cluster-$name.log" % d,
        "admin socket = %s/run/$cluster-$name.asok" % d,
    ]
    sections: List[Tuple[str, List[str]]] = [
        ("global", [
            "fsid = %s" % fsid,
            "mon host = %s" % spec.mon_host,
            "public addr = 127.0.0.1",
            "cluster addr = 127.0.0.1",
            "ms bind ipv6 = false",
            "ms bind port min = %d" % spec.port_min,
            "ms bind port max = %d" % spec.port_max,
            "auth allow insecure global id reclaim = false",
            # one OSD: size-1 pools, no failure domain above the OSD, no redundancy warning
            "mon allow pool size one = true",
            "mon warn on pool no redundancy = false",
            "mon allow pool delete = true",
            # the host disk may be fuller than Ceph likes; do not go HEALTH_WARN for that
            "mon data avail warn = 2",
            "mon data avail crit = 1",
            "mgr initial modules = iostat",
            "osd pool default size = 1",
            "osd pool default min size = 1",
            "osd pool default pg num = %d" % PG_NUM,
            "osd pool default pgp num = %d" % PG_NUM,
            "osd pool default pg autoscale mode = off",
            "osd crush chooseleaf type = 0",
            "run dir = %s/run" % d,
            "crash dir = %s/crash" % d,
            "mon cluster log file = %s/log/%s.log" % (d, c),
        ]),
        ("client", ["keyring = %s" % p.keyring(c, "admin")]),
        ("mon", ["mon data = %s/mon/$cluster-$id" % d] + per_daemon),
        ("mgr", ["mgr data = %s/mgr/$cluster-$id" % d] + per_daemon),
        ("osd", ["osd data = %s/osd/$cluster-$id" % d] + per_daemon + [
            # BlueStore on a sparse file in the OSD dir: no block device, little RAM,
            # survives restarts
            "osd objectstore = bluestore",
            "bluestore block create = true",
            "bluestore block size = %d" % OSD_BLOCK_BYTES,
            "bluestore fsck on mkfs = false",
            "bluestore fsck on mount = false",
            "osd memory target = 1073741824",
        ]),
        ("client.%s" % MIRROR_ID, ["keyring = %s" % p.keyring(c, MIRROR_ID)] + per_daemon + [
            # poll/commit the remote journal every second instead of 5 s: faster journal catch-up
            "rbd mirror journal poll age = 1",
            "rbd mirror journal commit age = 1",
        ]),
        ("client.%s" % PACK_ID, ["keyring = %s" % p.keyring(c, PACK_ID)]),
    ]
    out = ["# generated by ceph_migrate sandbox/ceph_sandbox.py - cluster %s (%s)" % (c, spec.role)]
    for title, body in sections:
        out.append("[%s]" % title)
        out.extend(body)
    return "\n".join(out) + "\n"


def conf_fsid(p: Paths, cluster: str) -> Optional[str]:
    """fsid written into a generated conf (None if the conf is missing)."""
    try:
        with open(p.conf(cluster)) as fh:
            for line in fh:
                m = re.match(r"\s*fsid\s*=\s*(\S+)", line)
                if m:
                    return m.group(1)
    except OSError:
        pass
    return None


def _caps_args(caps: Sequence[Tuple[str, str]]) -> List[str]:
    args: List[str] = []
    for svc, cap in caps:
        args += ["--cap", svc, cap]
    return args


def make_keys(p: Paths, cluster: str) -> str:
    """Create every key up front and import them into the mon keyring: the mon's first auth
    database then already knows admin, mgr.x, osd.0, rbd-mirror and the pack user (no
    `ceph auth` round trips). Returns the mon keyring path for mkfs."""
    mon_keyring = p.sub(cluster, "mon.keyring")
    keys = [
        (mon_keyring, "mon.", (("mon", "allow *"),)),
        (p.keyring(cluster, "admin"), "client.admin",
         (("mon", "allow *"), ("osd", "allow *"), ("mds", "allow *"), ("mgr", "allow *"))),
        (p.sub(cluster, "mgr", "%s-x" % cluster, "keyring"), "mgr.x",
         (("mon", "allow profile mgr"), ("osd", "allow *"), ("mds", "allow *"))),
        (p.sub(cluster, "osd", "%s-0" % cluster, "keyring"), "osd.0",
         (("mon", "allow profile osd"), ("mgr", "allow profile osd"), ("osd", "allow *"))),
        (p.keyring(cluster, MIRROR_ID), "client.%s" % MIRROR_ID, MIRROR_CAPS),
        (p.keyring(cluster, PACK_ID), "client.%s" % PACK_ID, PACK_CAPS),
    ]
    for path, entity, caps in keys:
        run(["ceph-authtool", "--create-keyring", path, "--gen-key", "-n", entity]
            + _caps_args(caps))
        os.chmod(path, 0o600)
    for path, _, _ in keys[1:]:
        run(["ceph-authtool", mon_keyring, "--import-keyring", path])
    return mon_keyring


def bootstrap_cluster(p: Paths, spec: ClusterSpec, clock: Clock) -> None:
    """mon a + mgr x + osd 0, by hand (no cephadm, no systemd)."""
    c, conf = spec.name, p.conf(spec.name)
    d = p.cluster_dir(c)
    for sub in ("run", "log", "crash", "mon/%s-a" % c, "mgr/%s-x" % c, "osd/%s-0" % c):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    fsid = str(uuid.uuid4())
    write_file(conf, render_conf(p, spec, fsid))
    mon_keyring = make_keys(p, c)
    monmap = p.sub(c, "monmap")
    run(["monmaptool", "--create", "--addv", "a", spec.mon_host, "--fsid", fsid, monmap])
    run(["ceph-mon", "--cluster", c, "-c", conf, "--mkfs", "-i", "a", "--monmap", monmap,
         "--keyring", mon_keyring])
    start_daemon(p, c, "ceph-mon.a", ["ceph-mon", "--cluster", c, "-c", conf, "-i", "a"])
    start_daemon(p, c, "ceph-mgr.x", ["ceph-mgr", "--cluster", c, "-c", conf, "-i", "x"])
    osd_uuid = str(uuid.uuid4())
    # the first ceph call also waits for the fresh mon to form a quorum
    run(ceph_argv(p, c, "osd", "new", osd_uuid, "0", connect_timeout=60), timeout=90)
    run_logged(["ceph-osd", "--cluster", c, "-c", conf, "-i", "0", "--mkfs",
                "--osd-uuid", osd_uuid],
               p.sub(c, "log", "osd-mkfs.log"), "%s: ceph-osd --mkfs" % c, timeout=180)
    start_daemon(p, c, "ceph-osd.0", ["ceph-osd", "--cluster", c, "-c", conf, "-i", "0"])
    clock.log("%s: mon, mgr, osd started" % c)


def wait_healthy(p: Paths, cluster: str, clock: Clock, timeout: float = HEALTH_TIMEOUT) -> None:
    def check() -> Tuple[bool, str]:
        h = cluster_health(p, cluster)
        return h["ok"], h["reason"]
    wait_for(check, timeout, "%s health" % cluster)
    clock.log("%s: HEALTH_OK, 1 osd up, mgr available, all pgs active+clean" % cluster)


def create_pools(p: Paths, spec: ClusterSpec, clock: Clock) -> None:
    """Create the pools, `rbd pool init` them concurrently, enable mirroring where needed."""
    c = spec.name
    for pool in spec.pools:
        run(ceph_argv(p, c, "osd", "pool", "create", pool, str(PG_NUM), str(PG_NUM)))
    in_parallel([lambda pool=pool: run(rbd_argv(p, c, "pool", "init", pool), timeout=120)
                 for pool in spec.pools])
    for pool, mode in MIRRORED_POOLS.items():
        run(rbd_argv(p, c, "mirror", "pool", "enable", pool, mode))
    clock.log("%s: pools %s ready, mirroring enabled (%s)"
              % (c, " ".join(spec.pools), ", ".join("%s %s" % kv for kv in MIRRORED_POOLS.items())))


def bring_up_cluster(p: Paths, spec: ClusterSpec, clock: Clock) -> None:
    """Everything one cluster needs before mirroring; runs in its own thread.
    A failure sets ABORT so that the other cluster's thread stops waiting early."""
    with abort_others():
        bootstrap_cluster(p, spec, clock)
        wait_healthy(p, spec.name, clock)
        create_pools(p, spec, clock)


def add_peers(p: Paths, clock: Clock) -> None:
    """One bootstrap token from the source (fsid, peer key, mon host) serves every pool."""
    res = run(rbd_argv(p, SOURCE, "mirror", "pool", "peer", "bootstrap", "create",
                       "--site-name", SOURCE, next(iter(MIRRORED_POOLS))))
    write_file(p.token, res.stdout, mode=0o600)
    for pool in MIRRORED_POOLS:
        run(rbd_argv(p, DESTINATION, "mirror", "pool", "peer", "bootstrap", "import",
                     "--site-name", DESTINATION, "--direction", "rx-only", pool, p.token))
    clock.log("peer %s -> %s imported (rx-only) for %s"
              % (SOURCE, DESTINATION, " ".join(MIRRORED_POOLS)))


def start_rbd_mirror(p: Paths, clock: Clock) -> None:
    """rbd-mirror on the destination. PITFALL: it ignores -c for its per-pool connections and
    re-reads the default search path, which honours CEPH_CONF with $cluster expanded."""
    start_daemon(p, DESTINATION, MIRROR_ID,
                 ["rbd-mirror", "--cluster", DESTINATION, "--id", MIRROR_ID],
                 extra_env={"CEPH_CONF": p.ceph_conf_env})

    def check() -> Tuple[bool, str]:
        res = [mirror_health(p, pool) for pool in MIRRORED_POOLS]
        return all(r["ok"] for r in res), "; ".join(r["reason"] for r in res)
    wait_for(check, MIRROR_TIMEOUT, "rbd-mirror")
    clock.log("rbd-mirror ready (leader, daemon health OK for %s)" % " ".join(MIRRORED_POOLS))


def stop_rbd_mirror(p: Paths) -> None:
    """Stop the rbd-mirror daemon by its PID (what a stalled replication looks like)."""
    mirrors = [d for d in read_pids(p) if d.name == MIRROR_ID]
    if not mirrors:
        raise SandboxError("no rbd-mirror daemon is recorded in %s" % p.root)
    stop_daemons(mirrors)
    for daemon in mirrors:
        drop_recorded(p.pids, daemon.pid)


def check_ports_free(specs: Sequence[ClusterSpec]) -> None:
    """Fail fast (instead of a mon that never answers) when another sandbox holds our mon ports."""
    for spec in specs:
        for port in (spec.mon_v2, spec.mon_v1):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    raise SandboxError("port 127.0.0.1:%d (%s mon) is in use; set "
                                       "CEPH_MIGRATE_SANDBOX_PORT_OFFSET" % (port, spec.name))


# --------------------------------------------------------------------------- generated files

def _yaml_scalar(v: Any) -> str:
    """Plain scalar when unambiguous, else a JSON string (JSON strings are valid YAML)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v)
    if re.match(r"^[A-Za-z/_][A-Za-z0-9_./-]*$", s) and s.lower() not in (
            "true", "false", "yes", "no", "on", "off", "null", "y", "n"):
        return s
    return json.dumps(s)


def _yaml_flow(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join("%s: %s" % (k, _yaml_flow(x)) for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml_flow(x) for x in v) + "]"
    return _yaml_scalar(v)


def to_yaml(doc: Dict[str, Any]) -> str:
    """Tiny emitter: one top-level key per line, flow style below (no PyYAML needed)."""
    return "".join("%s: %s\n" % (k, _yaml_flow(v)) for k, v in doc.items())


def pack_config(p: Paths) -> Dict[str, Any]:
    """The ceph_migrate pack config pointing at this sandbox, as the pack user."""
    def cluster(c: str) -> Dict[str, str]:
        return {"cluster": c, "conf": p.conf(c), "client_id": PACK_ID,
                "keyring": p.keyring(c, PACK_ID)}
    pools = list(MIRRORED_POOLS)
    return {
        "source_ceph": cluster(SOURCE),
        "destination_ceph": cluster(DESTINATION),
        "pools": {"mirrored_cinder_pool": pools[0], "mirrored_glance_pool": pools[1],
                  "mirrored_nova_pool": pools[2],
                  "destination_cinder_pool": DESTINATION_ONLY_POOLS[0],
                  "destination_glance_pool": DESTINATION_ONLY_POOLS[1]},
        "mirror_mode": "snapshot",
        "copy": {"image_features": ["layering", "exclusive-lock", "object-map", "fast-diff",
                                    "deep-flatten"], "timeout": 7200},
        "rbd_timeout": 120,
        "sync": {"poll_interval": 1, "wait_timeout": 540},
        "approvals": {"ceph_admin": {"users": [], "roles": []},
                      "tenant_admin": {"users": [], "roles": []}},
    }


def sandbox_facts(p: Paths, offset: int) -> Dict[str, Any]:
    """Machine-readable facts for tests (sandbox.json)."""
    clusters = {}
    for spec in cluster_specs(offset):
        c = spec.name
        clusters[c] = {
            "role": spec.role, "conf": p.conf(c), "fsid": conf_fsid(p, c),
            "admin_keyring": p.keyring(c, "admin"), "pack_keyring": p.keyring(c, PACK_ID),
            "mon_host": spec.mon_host, "mon_v2_port": spec.mon_v2, "mon_v1_port": spec.mon_v1,
            "daemon_ports": [spec.port_min, spec.port_max], "pools": list(spec.pools),
            "log_dir": p.sub(c, "log"),
        }
    return {
        "state_dir": p.root,
        "port_offset": offset,
        "ceph_conf_env": p.ceph_conf_env,
        "env_sh": p.env_sh,
        "pack_config": p.pack_config,
        "pids": p.pids,
        "pack_client_id": PACK_ID,
        "pack_caps": dict(PACK_CAPS),
        "clusters": clusters,
        "rbd_mirror": {"cluster": DESTINATION, "client_id": MIRROR_ID,
                       "admin_socket": p.mirror_asok, "keyring": p.keyring(DESTINATION, MIRROR_ID),
                       "pools": dict(MIRRORED_POOLS)},
    }


def write_generated_files(p: Paths, offset: int) -> None:
    """env.sh, the pack config and sandbox.json: cheap, so rewritten on every successful up."""
    write_file(p.env_sh, "export CEPH_CONF='%s'\n" % p.ceph_conf_env)
    write_file(p.pack_config, "# generated by sandbox/ceph_sandbox.py\n" + to_yaml(pack_config(p)))
    write_file(p.facts, json.dumps(sandbox_facts(p, offset), indent=2) + "\n")


def recorded_offset(p: Paths) -> Optional[int]:
    """Port offset of the last successful up, None when there is none on record."""
    try:
        return int(read_json(p.facts)["port_offset"])
    except (KeyError, TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- up / down

def _already_up(p: Paths, offset: int, clock: Clock) -> bool:
    """True when the recorded sandbox runs, is healthy, has a ready rbd-mirror and our ports.
    Anything less is torn down (by PID) and wiped so that up rebuilds from scratch."""
    daemons = read_pids(p)
    if not daemons:
        if os.path.isdir(p.root):
            wipe_state(p)
        return False
    if recorded_offset(p) != offset:
        reason = "port offset changed (%s -> %d)" % (recorded_offset(p), offset)
    else:
        rep = status(p)
        if rep["ok"]:
            return True
        reason = rep["reason"]
    clock.log("existing sandbox not usable (%s): stopping it and rebuilding" % reason)
    stop_daemons([d for d in daemons if daemon_alive(d)])
    wipe_state(p)
    return False


def _prepare_state_dir(p: Paths) -> None:
    if len(p.mirror_asok.encode()) > UNIX_PATH_MAX:
        raise SandboxError("state dir path too long: %s (%d bytes, max %d)"
                           % (p.mirror_asok, len(p.mirror_asok.encode()), UNIX_PATH_MAX))
    claim_state_dir(p.root, p.marker, p.pids, "ceph_sandbox.py")


def up(p: Optional[Paths] = None) -> Paths:
    """Bring the sandbox up (or confirm it is); returns its Paths. Raises SandboxError."""
    p = p or paths()
    clock = Clock()
    offset = port_offset()
    ensure_packages(clock)
    if _already_up(p, offset, clock):
        write_generated_files(p, offset)
        clock.log("already up (%s)" % p.root)
        return p
    specs = cluster_specs(offset)
    check_ports_free(specs)
    _prepare_state_dir(p)
    clock.log("bootstrapping %s in %s (port offset %d)"
              % (" and ".join(s.name for s in specs), p.root, offset))
    with stopped_on_failure(
            clock, "up failed: stopping the daemons it started (logs stay in %s/*/log)" % p.root,
            lambda: stop_daemons(read_pids(p), fast=True), p.pids):
        in_parallel([lambda s=s: bring_up_cluster(p, s, clock) for s in specs])
        clock.log("both clusters healthy with pools")
        add_peers(p, clock)
        start_rbd_mirror(p, clock)
        write_generated_files(p, offset)
    clock.log("up: done (pack config %s)" % p.pack_config)
    return p


def down(p: Optional[Paths] = None, wipe: bool = False, fast: bool = False) -> List[Daemon]:
    """Stop the recorded daemons by PID (never by name); wipe deletes the state dir.
    Returns the daemons that were recorded."""
    p = p or paths()
    daemons = read_pids(p)
    stop_listed(daemons, p.pids, lambda: stop_daemons(daemons, fast=fast))
    if wipe:
        wipe_state(p)
        print("wiped %s" % p.root)
    return daemons


def config_path(p: Optional[Paths] = None) -> Optional[str]:
    """Path of the generated pack config, None when the sandbox is not running."""
    p = p or paths()
    if daemons_running(p) and os.path.isfile(p.pack_config):
        return p.pack_config
    return None


# --------------------------------------------------------------------------- CLI

def main(argv: Optional[Sequence[str]] = None) -> int:
    parser, sub = cli_parser(
        "Two-cluster Ceph sandbox (ceph -> cephpa1, rbd-mirror) for ceph_migrate. "
        "State dir: $CEPH_MIGRATE_SANDBOX_DIR; ports: +$CEPH_MIGRATE_SANDBOX_PORT_OFFSET.",
        install="install Debian's Ceph packages if a binary is missing",
        up="install if needed, start both clusters and rbd-mirror (idempotent)",
        down="stop the recorded daemons by PID",
        config="print the path of the generated pack config",
        down_flags={"--wipe": "also delete the state dir",
                    "--fast": "SIGKILL at once instead of graceful stop"})
    sub.add_parser("stop-mirror", help="stop the rbd-mirror daemon by its PID")
    sub.add_parser("start-mirror", help="start the rbd-mirror daemon again (waits until healthy)")
    args = parser.parse_args(argv)
    p = paths()
    return run_command(args.cmd, p.root, {
        "install": lambda: ensure_packages(Clock()),
        "up": lambda: up(p),
        "down": lambda: down(p, wipe=args.wipe, fast=args.fast),
        "status": lambda: print_status(status(p), args.json, format_status),
        "config": lambda: print_config(config_path(p), "sandbox in %s is not up" % p.root),
        "stop-mirror": lambda: stop_rbd_mirror(p),
        "start-mirror": lambda: start_rbd_mirror(p, Clock()),
    })


if __name__ == "__main__":
    sys.exit(main())
