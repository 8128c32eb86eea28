#!/usr/bin/env python3
"""OpenStack sandbox for ceph_migrate: two small clouds on the Ceph sandbox's two clusters.

    pa1 (source)       keystone 5000, glance 9292, cinder 8776  -> Ceph cluster `ceph`
    ct1 (destination)  keystone 5010, glance 9302, cinder 8786  -> Ceph cluster `cephpa1`

Each cloud: Keystone, Glance (api) and Cinder (api, scheduler, volume) from a virtualenv, the
APIs under uWSGI, all on 127.0.0.1 with SQLite databases in the state dir. Cinder uses the real
RBD driver, Glance the real rbd store, as the Ceph users client.cinder and client.glance
(created on both clusters with the admin keyring). Notifications (messagingv2) go to RabbitMQ,
one vhost per cloud (ceph_migrate_pa1, ceph_migrate_ct1) on a loopback-only broker of the
sandbox's own on 127.0.0.1:5682 (not the machine's 5672: the tests restart it).

    openstack_sandbox.py install            apt packages and the virtualenv, if missing
    openstack_sandbox.py up                 install, then start both clouds (idempotent)
    openstack_sandbox.py down [--wipe]      stop by PID; --wipe also deletes the state dir, the
                                            vhosts and the clouds' RBD images
    openstack_sandbox.py status [--json]    exit 0 when both clouds are healthy
    openstack_sandbox.py config             path of the generated clouds.yaml
    openstack_sandbox.py restart-broker     stop the own RabbitMQ by PID and start it again

Environment: CEPH_MIGRATE_OPENSTACK_DIR (state dir, default /tmp/ceph_migrate_openstack),
CEPH_MIGRATE_OPENSTACK_VENV (default <repo>/.venv-openstack), CEPH_MIGRATE_SANDBOX_DIR (the
Ceph sandbox this builds on; brought up when its daemons are not running),
CEPH_MIGRATE_OPENSTACK_RABBIT_PORT / _EPMD_PORT (default 5682 / 4379).

<state>/clouds.yaml has the entries pa1-admin, pa1-tenant, pa1-tenant-admin, ct1-admin,
ct1-tenant, ct1-tenant-admin; <state>/openstack.json has the machine-readable facts.
Processes are started in their own sessions and stopped by PID only, never by name.
"""

from __future__ import annotations

import functools
import grp
import json
import os
import pwd
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, List, Optional, Sequence, Tuple

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:   # ceph_sandbox.py and sandbox_common.py sit beside this file
    sys.path.insert(0, _HERE)
import ceph_sandbox  # noqa: E402  (the Ceph facts, brought up when needed)
from sandbox_common import (  # noqa: E402
    Clock, Matcher, Recorded, SandboxError, abort_others, all_alive,
    apt_get_install, claim_state_dir, cli_parser, conclude, drop_recorded, http_call,
    in_parallel, is_alive, json_or_none, port_open, print_config, print_status, rss_mib,
    read_json,
    read_recorded, run, run_command, run_logged, start_recorded, StateDir, state_lock,
    stop_listed,
    stop_recorded, stopped_on_failure, verdict, wait_for, wipe_state_dir, write_file)
from rabbit_node import RabbitNode  # noqa: E402

REPO = os.path.dirname(_HERE)
MARKER = ".ceph_migrate_openstack"
VENV_STAMP = ".ceph_migrate_openstack.stamp"
SYSTEM_PYTHON = "/usr/bin/python3.11"   # Debian's python3-rbd/python3-rados are built for it
# Top-level series pinned to what this sandbox was verified with (Keystone 30, Glance 33,
# Cinder 29 = 2025.1/2025.2 era); --ignore-installed so that only rados/rbd come from Debian.
PIP_PACKAGES = ("keystone==30.*", "glance==33.*", "cinder==29.*", "openstacksdk==4.*",
                "uwsgi", "pika")
VENV_IMPORTS = "import rados, rbd, keystone, glance, glance_store, cinder, openstack, pika"
APT_PACKAGES = ("python3-rbd", "python3-rados", "python3-venv",
                # qemu-img: Cinder's RBD driver creates LUKS (encrypted) volumes with it
                "qemu-utils",
                # PyPI has no uWSGI wheel: pip compiles it against Debian's python3.11
                "gcc", "libc6-dev", "python3.11-dev")

BROKER_HOST = "127.0.0.1"
# Not the machine's 5672/4369: the sandbox runs a broker of its own, which the notification
# sensor's tests restart under it. A broker already answering on BROKER_PORT is still reused.
# The Erlang distribution port follows the AMQP port.
BROKER_PORT = int(os.environ.get("CEPH_MIGRATE_OPENSTACK_RABBIT_PORT") or 5682)
EPMD_PORT = int(os.environ.get("CEPH_MIGRATE_OPENSTACK_EPMD_PORT") or 4379)
RABBIT_USER = "guest"
RABBIT_PASSWORD = "guest"
RABBIT_NODENAME = "ceph_migrate_os"

BROKER_CLOUD = "shared"   # CLOUD column of the own broker's lines in the pids file
# Stop order: volume first, broker last (services hang in reconnect loops without it).
STOP_TIERS = (("cinder-volume",), ("cinder-scheduler", "cinder-api", "glance-api"),
              ("keystone",), ("rabbitmq",), ("epmd",))
STOP_GRACE = {"cinder-volume": 5.0, "cinder-scheduler": 5.0, "cinder-api": 5.0,
              "glance-api": 5.0, "keystone": 5.0, "rabbitmq": 20.0, "epmd": 3.0}
START_TIMEOUT = 120.0       # per cloud: keystone, setup, then health
BACKEND_TIMEOUT = 150.0     # scheduler learns the pool at latest one periodic_interval later

USERS = {  # user -> (project, roles)
    "admin": ("admin", ("admin", "service")),
    "glance": ("service", ("admin", "service")),
    "cinder": ("service", ("admin", "service")),
    "tenant-user": ("tenant", ("member",)),
    "tenant-admin": ("tenant", ("member",)),
}
CLOUDS_YAML_USERS = {"admin": "admin", "tenant": "tenant-user", "tenant-admin": "tenant-admin"}
CEPH_USERS = ("cinder", "glance")
CEPH_CAPS = (("mon", "profile rbd"), ("osd", "profile rbd"), ("mgr", "profile rbd"))
DEFAULT_TYPE = "ceph"
ENCRYPTED_TYPE = "encrypted"
ENCRYPTION = {"provider": "luks", "cipher": "aes-xts-plain64", "key_size": 256,
              "control_location": "front-end"}
GLANCE_STORE_ID = "ceph"
ETC_CEPH = "/etc/ceph"


# --------------------------------------------------------------------------- layout

@dataclass(frozen=True)
class CloudSpec:
    """One cloud: ports, Ceph cluster, Cinder backend and pools, RabbitMQ vhost."""
    name: str
    role: str
    ceph_cluster: str
    keystone_port: int
    glance_port: int
    cinder_port: int
    cinder_host: str
    cinder_backend: str
    cinder_pool: str
    glance_pool: str

    @property
    def region(self) -> str:
        return self.name

    @property
    def vhost(self) -> str:
        return "ceph_migrate_%s" % self.name

    @property
    def manage_host(self) -> str:
        """host@backend#pool as `cinder manage` wants it (pool name == backend name for RBD)."""
        return "%s@%s#%s" % (self.cinder_host, self.cinder_backend, self.cinder_backend)

    @property
    def keystone_url(self) -> str:
        return "http://127.0.0.1:%d" % self.keystone_port

    @property
    def auth_url(self) -> str:
        return self.keystone_url + "/v3"

    @property
    def glance_url(self) -> str:
        return "http://127.0.0.1:%d" % self.glance_port

    @property
    def cinder_url(self) -> str:
        return "http://127.0.0.1:%d" % self.cinder_port

    def ports(self) -> Tuple[int, int, int]:
        return (self.keystone_port, self.glance_port, self.cinder_port)


CLOUDS = (
    CloudSpec("pa1", "source", "ceph", 5000, 9292, 8776,
              "cinder-pa1-cl1", "oscinder", "oscinder", "osglance"),
    CloudSpec("ct1", "destination", "cephpa1", 5010, 9302, 8786,
              "cinder-ct1-cl1", "cinder-ceph-pa1-cl1", "cinder-ceph-pa1-cl1", "glance-ct1-cl1"),
)
CLOUD_BY_NAME = {c.name: c for c in CLOUDS}


@dataclass(frozen=True)
class Paths(StateDir):
    """Every file the sandbox owns, all below one state dir (plus the virtualenv)."""
    venv: str = ""
    MARKER: ClassVar[str] = MARKER

    @property
    def clouds_yaml(self) -> str:
        return os.path.join(self.root, "clouds.yaml")

    @property
    def facts(self) -> str:
        return os.path.join(self.root, "openstack.json")

    @property
    def broker_dir(self) -> str:
        return os.path.join(self.root, "rabbitmq")

    def bin(self, name: str) -> str:
        return os.path.join(self.venv, "bin", name)

    @property
    def python(self) -> str:
        return self.bin("python")

    def cloud(self, cloud: str, *parts: str) -> str:
        return os.path.join(self.root, cloud, *parts)

    def log_dir(self, cloud: str) -> str:
        return self.cloud(cloud, "log")

    def ceph_conf(self, spec: CloudSpec) -> str:
        """The cloud's own <cluster>.conf: mon host, fsid and the cinder/glance keyrings only."""
        return self.cloud(spec.name, "ceph", "%s.conf" % spec.ceph_cluster)

    def ceph_keyring(self, spec: CloudSpec, user: str) -> str:
        return self.cloud(spec.name, "ceph", "%s.client.%s.keyring" % (spec.ceph_cluster, user))

    def initialised(self, cloud: str) -> str:
        """Written once databases, keys and identity exist: a restart may then reuse them."""
        return self.cloud(cloud, ".initialised")

    def setup_facts(self, cloud: str) -> str:
        return self.cloud(cloud, "setup.json")

    def uwsgi_ini(self, cloud: str, service: str) -> str:
        return self.cloud(cloud, "%s-uwsgi.ini" % service)

    def keystone_conf(self, cloud: str) -> str:
        return self.cloud(cloud, "keystone", "keystone.conf")

    def glance_dir(self, cloud: str) -> str:
        return self.cloud(cloud, "glance")

    def glance_conf(self, cloud: str) -> str:
        return self.cloud(cloud, "glance", "glance-api.conf")

    def cinder_conf(self, cloud: str) -> str:
        return self.cloud(cloud, "cinder", "cinder.conf")

    def db(self, cloud: str, project: str) -> str:
        return self.cloud(cloud, project, "%s.db" % project)


def paths() -> Paths:
    """State dir from $CEPH_MIGRATE_OPENSTACK_DIR, venv from $CEPH_MIGRATE_OPENSTACK_VENV."""
    root = os.environ.get("CEPH_MIGRATE_OPENSTACK_DIR") or "/tmp/ceph_migrate_openstack"
    venv = os.environ.get("CEPH_MIGRATE_OPENSTACK_VENV") or os.path.join(REPO, ".venv-openstack")
    return Paths(os.path.abspath(root), os.path.abspath(venv))


# --------------------------------------------------------------------------- small helpers

def keystone_token(spec: CloudSpec, user: str, password: str,
                   project: str) -> Tuple[Optional[str], Dict[str, Any]]:
    """(token, token body) for a project-scoped password login; (None, {error}) on failure."""
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    status, headers, data = http_call("POST", spec.auth_url + "/auth/tokens", body)
    if status == 201 and headers is not None:
        return headers.get("X-Subject-Token"), data.get("token", {})
    return None, {"error": "HTTP %s: %s" % (status, str(data)[:200])}


def sqlite_wal(path: str) -> None:
    """WAL lets the API, scheduler and volume service write one SQLite file side by side."""
    con = sqlite3.connect(path)
    try:
        con.execute("pragma journal_mode=wal")
    finally:
        con.close()


def ini(sections: Sequence[Tuple[str, Sequence[Tuple[str, Any]]]]) -> str:
    """Render oslo.config / uWSGI style INI text."""
    out = ["# generated by ceph_migrate sandbox/openstack_sandbox.py"]
    for title, items in sections:
        out.append("[%s]" % title)
        out.extend("%s = %s" % (k, v) for k, v in items)
        out.append("")
    return "\n".join(out)


def yaml_block(doc: Any, indent: int = 0) -> str:
    """Block-style YAML for nested dicts of scalars (strings as JSON strings, valid YAML)."""
    lines = []
    for key, value in doc.items():
        if isinstance(value, dict):
            lines.append("%s%s:" % (" " * indent, key))
            lines.append(yaml_block(value, indent + 2).rstrip("\n"))
        elif isinstance(value, bool) or isinstance(value, int):
            lines.append("%s%s: %s" % (" " * indent, key, json.dumps(value)))
        else:
            lines.append("%s%s: %s" % (" " * indent, key, json.dumps(str(value))))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- install

def dpkg_installed(package: str) -> bool:
    res = run(["dpkg-query", "-W", "-f=${Status}", package], check=False)
    return res.returncode == 0 and res.stdout.strip().endswith(" installed")


def broker_answers() -> bool:
    return port_open(BROKER_PORT, BROKER_HOST)


def apt_install(packages: Sequence[str], clock: Clock) -> None:
    """apt-get install; a new rabbitmq-server must not start a system broker on 0.0.0.0, so
    service starts are refused through policy-rc.d while it installs (unless one exists)."""
    clock.log("apt-get install %s" % " ".join(packages))
    policy = "/usr/sbin/policy-rc.d"
    own_policy = "rabbitmq-server" in packages and not os.path.exists(policy)
    if own_policy:
        write_file(policy, "#!/bin/sh\nexit 101\n", mode=0o755)
    try:
        apt_get_install(packages, lambda: [pkg for pkg in packages if not dpkg_installed(pkg)],
                        options=["--no-install-recommends"])
    finally:
        if own_policy:
            os.unlink(policy)


def venv_ready(p: Paths) -> bool:
    """The stamp names exactly the packages asked for, and the entry points exist."""
    try:
        with open(os.path.join(p.venv, VENV_STAMP)) as fh:
            stamp = fh.read().strip()
    except OSError:
        return False
    return stamp == " ".join(PIP_PACKAGES) and all(
        os.access(p.bin(b), os.X_OK) for b in ("uwsgi", "cinder-volume", "glance-manage",
                                               "keystone-manage", "python"))


def ensure_venv(p: Paths, clock: Clock) -> None:
    """<repo>/.venv-openstack from Debian's python3.11 with system site packages (for rados and
    rbd only: --ignore-installed keeps Debian's requests/WebOb/cryptography out)."""
    if venv_ready(p):
        install_sqlite_immediate(p)
        return
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        raise SandboxError("%s is missing (the Debian python that python3-rbd is built for)"
                           % SYSTEM_PYTHON)
    clock.log("creating virtualenv %s (pip install %s)" % (p.venv, " ".join(PIP_PACKAGES)))
    run([SYSTEM_PYTHON, "-m", "venv", "--system-site-packages", p.venv], timeout=300)
    pip = [p.python, "-m", "pip", "install", "-q"]
    run(pip + ["-U", "pip", "setuptools", "wheel"], timeout=600)
    run(pip + ["--ignore-installed"] + list(PIP_PACKAGES), timeout=1800)
    run([p.python, "-c", VENV_IMPORTS], timeout=120)
    install_sqlite_immediate(p)
    write_file(os.path.join(p.venv, VENV_STAMP), " ".join(PIP_PACKAGES) + "\n")
    clock.log("virtualenv ready")


def install_sqlite_immediate(p: Paths) -> None:
    """sandbox/sqlite_immediate.py into the venv, imported at every interpreter start (a .pth
    file): SQLite writers of one cloud queue instead of failing with "database is locked"."""
    site = run([p.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
               timeout=60).stdout.strip()
    with open(os.path.join(_HERE, "sqlite_immediate.py")) as handle:
        module = handle.read()
    target = os.path.join(site, "ceph_migrate_sqlite_immediate.py")
    if not os.path.exists(target) or open(target).read() != module:
        write_file(target, module)
    write_file(os.path.join(site, "ceph_migrate_sqlite_immediate.pth"),
               "import ceph_migrate_sqlite_immediate\n")


def install(p: Optional[Paths] = None, clock: Optional[Clock] = None) -> None:
    """apt packages when missing (rabbitmq-server only when no broker answers), then the venv."""
    p = p or paths()
    clock = clock or Clock()
    wanted = list(APT_PACKAGES)
    if not broker_answers():
        wanted.append("rabbitmq-server")
    missing = [pkg for pkg in wanted if not dpkg_installed(pkg)]
    if missing:
        apt_install(missing, clock)
    ensure_venv(p, clock)


# --------------------------------------------------------------------------- processes

@dataclass(frozen=True)
class Proc(Recorded):
    """One line of <state>/pids: 'PID NAME CLOUD'."""

    @property
    def cloud(self) -> str:
        return self.group


def read_pids(p: Paths) -> List[Proc]:
    """Recorded processes; a missing or empty pids file means nothing runs."""
    return read_recorded(p.pids, Proc)


def expected_cmdline(p: Paths, proc: Proc) -> Tuple[Tuple[str, ...], str]:
    """(programs, argument) that a PID's command line must show to count as PROC (or as one
    of its process group); guards against PID reuse. Scripts run as 'python SCRIPT ...', so
    the program may be argv[0] or argv[1]."""
    if proc.name in ("keystone", "glance-api", "cinder-api"):
        return ("uwsgi",), p.uwsgi_ini(proc.cloud, proc.name)
    if proc.name in ("cinder-scheduler", "cinder-volume"):
        return (proc.name,), p.cinder_conf(proc.cloud)
    if proc.name == "rabbitmq":   # the sh script, and the Erlang VM it runs
        return RabbitNode.PROGRAMS, ""
    return (proc.name,), ""


def _runs_as(p: Paths, proc: Proc, argv: List[str]) -> bool:
    """ARGV is that of PROC (or of a fork of it), by expected_cmdline()."""
    programs, argument = expected_cmdline(p, proc)
    if not any(os.path.basename(a) in programs for a in argv[:2]):
        return False
    return not argument or argument in argv


def matcher(p: Paths) -> Matcher:
    """Whether a command line is that of a recorded process of this state dir."""
    return functools.partial(_runs_as, p)


def proc_alive(p: Paths, proc: Proc) -> bool:
    """The recorded PID runs and is still the program we started."""
    return is_alive(proc, matcher(p))


def start_proc(p: Paths, cloud: str, name: str, argv: Sequence[str],
               extra_env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None) -> Proc:
    """Start argv in its own session (pid == pgid), record 'PID NAME CLOUD'."""
    env = {"PYTHONWARNINGS": "ignore"}
    env.update(extra_env or {})
    log_dir = p.log_dir(cloud) if cloud != BROKER_CLOUD else p.broker_dir
    return start_recorded(p.pids, Proc, cloud, name, argv,
                          os.path.join(log_dir, "%s.stdout" % name), cwd or p.root, env)


def stop_procs(p: Paths, procs: Sequence[Proc],
               clock: Optional[Clock] = None) -> Dict[str, float]:
    """Stop exactly these PIDs tier by tier: cinder-volume, scheduler, APIs, keystone, broker.
    Returns the seconds each tier took."""
    return stop_recorded(procs, STOP_TIERS, STOP_GRACE, matcher(p),
                         log=clock.log if clock else None)


def wipe_state(p: Paths) -> None:
    """Delete the state dir, but only if this script made it (marker file) or it is empty."""
    wipe_state_dir(p.root, p.marker, "an OpenStack sandbox")


# --------------------------------------------------------------------------- RabbitMQ

def broker_node(p: Paths) -> RabbitNode:
    """The sandbox's own loopback-only broker, every file in <state>/rabbitmq."""
    return RabbitNode(p.broker_dir, RABBIT_NODENAME, BROKER_PORT, EPMD_PORT)


def own_broker(p: Paths) -> bool:
    return any(x.name == "rabbitmq" for x in read_pids(p))


def rabbitmqctl(p: Paths, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """rabbitmqctl against the broker we use: our own node, or the machine's."""
    if shutil.which("rabbitmqctl") is None:
        raise SandboxError("rabbitmqctl not found: a broker answers on %s:%d but cannot be "
                           "managed (install rabbitmq-server's tools)" % (BROKER_HOST, BROKER_PORT))
    if own_broker(p):
        # not Debian's /usr/sbin wrapper: it su's to the rabbitmq user and its HOME (cookie)
        return broker_node(p).ctl(*args, check=check)
    return run(["rabbitmqctl"] + list(args), timeout=60, check=check)


def start_own_broker(p: Paths, clock: Clock) -> None:
    """A loopback-only RabbitMQ of our own (a fresh machine may have no broker)."""
    broker_node(p).start(lambda name, argv, env: start_proc(
        p, BROKER_CLOUD, name, argv, extra_env=env, cwd=p.broker_dir), clock)


def restart_broker(p: Paths) -> None:
    """Stop the own broker by its PID and start it again on the same data (vhosts, users):
    what the clouds and the notification sensor must live through."""
    clock = Clock()
    brokers = [x for x in read_pids(p) if x.name == "rabbitmq"]
    if not brokers:
        raise SandboxError("the broker on %s:%d is not this sandbox's own: not restarting it"
                           % (BROKER_HOST, BROKER_PORT))
    node = broker_node(p)
    stop_recorded(brokers, (("rabbitmq",),), STOP_GRACE, matcher(p), log=clock.log)
    for broker in brokers:
        drop_recorded(p.pids, broker.pid)
    node.wait_stopped()
    clock.log("broker stopped")
    start_proc(p, BROKER_CLOUD, "rabbitmq", [RabbitNode.SERVER], extra_env=node.env(),
               cwd=p.broker_dir)
    node.wait_started(clock)


def list_vhosts(p: Paths) -> List[str]:
    return rabbitmqctl(p, "list_vhosts", "-q", "--no-table-headers").stdout.split()


def ensure_vhosts(p: Paths, reset: Sequence[str], clock: Clock) -> None:
    """One vhost per cloud with full permissions for guest; vhosts in RESET are recreated
    empty (a rebuilt cloud must not see the old cloud's queues)."""
    have = set(list_vhosts(p))
    jobs: List[Callable[[], Any]] = []

    def make(vhost: str, drop: bool) -> None:
        if drop:
            rabbitmqctl(p, "delete_vhost", vhost)
        rabbitmqctl(p, "add_vhost", vhost)
        rabbitmqctl(p, "set_permissions", "-p", vhost, RABBIT_USER, ".*", ".*", ".*")

    for spec in CLOUDS:
        if spec.vhost not in have or spec.vhost in reset:
            jobs.append(lambda v=spec.vhost, d=spec.vhost in have: make(v, d))
    in_parallel(jobs)
    clock.log("RabbitMQ vhosts %s ready" % " ".join(s.vhost for s in CLOUDS))


def delete_vhosts(p: Paths) -> List[str]:
    """Remove our vhosts from the machine's broker (down --wipe)."""
    if not broker_answers() or shutil.which("rabbitmqctl") is None:
        return []
    have = set(list_vhosts(p))
    gone = [s.vhost for s in CLOUDS if s.vhost in have]
    in_parallel([lambda v=v: rabbitmqctl(p, "delete_vhost", v) for v in gone])
    return gone


def transport_url(spec: CloudSpec) -> str:
    return "rabbit://%s:%s@%s:%d/%s" % (RABBIT_USER, RABBIT_PASSWORD, BROKER_HOST, BROKER_PORT,
                                        spec.vhost)


# --------------------------------------------------------------------------- Ceph side

def ceph_facts(clock: Clock) -> Dict[str, Any]:
    """The Ceph sandbox's sandbox.json; brings the Ceph sandbox up when its daemons are down
    (never touches it when they run). Under the Ceph sandbox's lock, as its own `up` is."""
    cp = ceph_sandbox.paths()
    with state_lock(cp.root):
        if not ceph_sandbox.daemons_running(cp) or not os.path.isfile(cp.facts):
            clock.log("Ceph sandbox in %s is not running: bringing it up" % cp.root)
            ceph_sandbox.up(cp)
        with open(cp.facts) as fh:
            return json.load(fh)


def ensure_ceph_user(ceph: Dict[str, Any], cluster: str, user: str, keyring: str) -> None:
    """client.USER with the rbd profiles, key written to KEYRING (caps fixed if they differ)."""
    base = ceph_sandbox.ceph_argv(ceph_sandbox.paths(ceph["state_dir"]), cluster,
                                  connect_timeout=15)
    caps: List[str] = []
    for svc, cap in CEPH_CAPS:
        caps += [svc, cap]
    res = run(base + ["auth", "get-or-create", "client.%s" % user] + caps + ["-o", keyring],
              check=False, timeout=30)
    if res.returncode != 0:
        if "does not match" not in res.stderr:
            raise SandboxError("ceph auth get-or-create client.%s on %s: %s"
                               % (user, cluster, res.stderr.strip()))
        run(base + ["auth", "caps", "client.%s" % user] + caps, timeout=30)
        run(base + ["auth", "get", "client.%s" % user, "-o", keyring], timeout=30)
    os.chmod(keyring, 0o600)


def write_ceph_conf(p: Paths, spec: CloudSpec, ceph: Dict[str, Any]) -> None:
    """A client-only <cluster>.conf per cloud: no admin key, just the cinder/glance keyrings."""
    c = ceph["clusters"][spec.ceph_cluster]
    d = p.cloud(spec.name, "ceph")
    os.makedirs(os.path.join(d, "run"), exist_ok=True)
    sections = [
        ("global", [("fsid", c["fsid"]), ("mon host", c["mon_host"]),
                    ("ms bind ipv6", "false"), ("run dir", os.path.join(d, "run")),
                    ("log file", os.path.join(p.log_dir(spec.name), "$cluster-$name.log"))]),
    ]
    for user in CEPH_USERS:
        sections.append(("client.%s" % user, [("keyring", p.ceph_keyring(spec, user))]))
    write_file(p.ceph_conf(spec), ini(sections))


def brick_keyring(spec: CloudSpec) -> str:
    """Where os-brick looks for cinder's key: hard-coded /etc/ceph/<cluster>.client.<user>.keyring
    (cinder's rbd_keyring_conf is not settable in OpenStack, OSSN-0085). Cinder's RBD driver
    opens volumes through os-brick for upload-to-image (raw), migration and backups."""
    return os.path.join(ETC_CEPH, "%s.client.cinder.keyring" % spec.ceph_cluster)


def _links_into(path: str, root: str) -> bool:
    """PATH is a symlink into state dir ROOT: ours to replace or remove."""
    return os.path.islink(path) and os.readlink(path).startswith(root + os.sep)


def link_brick_keyring(p: Paths, spec: CloudSpec) -> None:
    """Symlink brick_keyring() to the state dir's keyring, as a cinder-volume host has it.
    A file or link there that is not ours (and not identical) is left alone: error."""
    path, target = brick_keyring(spec), p.ceph_keyring(spec, "cinder")
    os.makedirs(ETC_CEPH, exist_ok=True)
    if os.path.islink(path) and os.readlink(path) == target:
        return
    if os.path.exists(path):   # a file, or a link to another sandbox's keyring
        with open(path) as fh, open(target) as mine:
            if fh.read() == mine.read():
                return   # the same key of the same Ceph user: fine as it is
        if not _links_into(path, p.root):
            raise SandboxError("%s holds another key for client.cinder: os-brick "
                               "(upload-to-image) would use it; move it away" % path)
    if os.path.lexists(path):
        os.unlink(path)   # dangling, or a stale link into our own state dir
    os.symlink(target, path)


def unlink_brick_keyrings(p: Paths) -> List[str]:
    """Remove the /etc/ceph links that point into our state dir (down --wipe)."""
    gone = []
    for spec in CLOUDS:
        path = brick_keyring(spec)
        if _links_into(path, p.root):
            os.unlink(path)
            gone.append(path)
    return gone


def prepare_ceph(p: Paths, ceph: Dict[str, Any], clock: Clock) -> None:
    """Keyrings of client.cinder/client.glance on both clusters, in parallel (cheap, redone on
    every start so that a rebuilt Ceph sandbox is picked up)."""
    jobs: List[Callable[[], Any]] = []
    for spec in CLOUDS:
        os.makedirs(p.cloud(spec.name, "ceph"), exist_ok=True)
        for user in CEPH_USERS:
            jobs.append(lambda s=spec, u=user: ensure_ceph_user(
                ceph, s.ceph_cluster, u, p.ceph_keyring(s, u)))
    in_parallel(jobs)
    for spec in CLOUDS:
        write_ceph_conf(p, spec, ceph)
        link_brick_keyring(p, spec)
    clock.log("Ceph users client.cinder, client.glance ready on %s"
              % " and ".join(sorted({s.ceph_cluster for s in CLOUDS})))


def owned_rbd_images(p: Paths, spec: CloudSpec, fsid: str) -> List[str]:
    """'pool/image' of every RBD image the cloud's databases still hold, volumes first (they
    may be clones of the Glance images)."""
    owned: List[str] = []
    queries = (("cinder", "select coalesce(_name_id, id) from volumes where deleted = 0"),
               ("glance", "select value from image_locations where deleted = 0"))
    for project, query in queries:
        db = p.db(spec.name, project)
        if not os.path.isfile(db):
            continue
        con = sqlite3.connect(db)
        try:
            rows = [r[0] for r in con.execute(query).fetchall()]
        except sqlite3.Error:
            rows = []
        finally:
            con.close()
        for row in rows:
            if project == "cinder":
                owned.append("%s/volume-%s" % (spec.cinder_pool, row))
            elif row.startswith("rbd://%s/" % fsid) and len(row.split("/")) == 6:
                owned.append("/".join(row.split("/")[3:5]))
    return owned


def purge_rbd_image(cp: ceph_sandbox.Paths, cluster: str, image: str) -> Optional[str]:
    """Remove one RBD image with its snapshots; None when done or already gone, else why not."""
    base = ceph_sandbox.rbd_argv(cp, cluster)
    res = run(base + ["snap", "ls", "--all", "--format", "json", image], check=False, timeout=60)
    if res.returncode != 0:
        return None if "No such file" in res.stderr else res.stderr.strip()[-200:]
    snaps = json_or_none(res) or []
    for snap in snaps:
        if snap.get("protected") == "true":
            run(base + ["snap", "unprotect", "%s@%s" % (image, snap["name"])], check=False)
    if any(snap.get("namespace", {}).get("type") == "mirror" for snap in snaps):
        run(base + ["mirror", "image", "disable", "--force", image], check=False, timeout=60)
    run(base + ["snap", "purge", "--no-progress", image], check=False, timeout=300)
    res = run(base + ["rm", "--no-progress", image], check=False, timeout=300)
    return None if res.returncode == 0 else res.stderr.strip()[-200:]


def purge_ceph(p: Paths) -> None:
    """down --wipe: delete the RBD images of the clouds' volumes and images, so that the shared
    Ceph pools do not fill with orphans. Needs the Ceph sandbox running; skipped otherwise."""
    cp = ceph_sandbox.paths()
    ceph = read_json(cp.facts)
    if not ceph_sandbox.daemons_running(cp) or not isinstance(ceph, dict):
        print("Ceph sandbox not running: RBD images of the clouds left in place")
        return
    for spec in CLOUDS:
        fsid = ceph["clusters"][spec.ceph_cluster]["fsid"]
        images = owned_rbd_images(p, spec, fsid)
        failed = [(i, why) for i in images
                  for why in [purge_rbd_image(cp, spec.ceph_cluster, i)] if why]
        print("%s: removed %d RBD images from cluster %s%s"
              % (spec.name, len(images) - len(failed), spec.ceph_cluster,
                 "".join("; could not remove %s: %s" % f for f in failed)))


# --------------------------------------------------------------------------- passwords

def load_passwords(p: Paths, create: bool = False) -> Dict[str, Dict[str, str]]:
    """cloud -> user -> password, generated once (0600), plus cinder's fixed LUKS key."""
    data = read_json(p.passwords) or {}
    changed = False
    for spec in CLOUDS:
        cloud = data.setdefault(spec.name, {})
        for user in list(USERS) + ["_fixed_key"]:
            if user not in cloud:
                if not create:
                    continue
                # hex: a password that starts with '-' reads as an option on a command line,
                # and '%' or '/' mean something in ini files and URLs
                cloud[user] = secrets.token_hex(32 if user == "_fixed_key" else 18)
                changed = True
    if changed:
        write_file(p.passwords, json.dumps(data, indent=2) + "\n", mode=0o600)
    return data


# --------------------------------------------------------------------------- config files

def authtoken(spec: CloudSpec, user: str, password: str) -> List[Tuple[str, Any]]:
    return [("www_authenticate_uri", spec.keystone_url), ("auth_url", spec.keystone_url),
            ("auth_type", "password"), ("project_domain_id", "default"),
            ("user_domain_id", "default"), ("project_name", "service"),
            ("username", user), ("password", password), ("region_name", spec.region),
            ("service_token_roles_required", "true")]


def sqlite_url(path: str) -> str:
    """SQLite with a busy timeout: three services write one file."""
    return "sqlite:///%s?timeout=30" % path


def keystone_conf(p: Paths, spec: CloudSpec) -> str:
    d = p.cloud(spec.name, "keystone")
    return ini([
        ("DEFAULT", [("log_file", os.path.join(p.log_dir(spec.name), "keystone.log")),
                     ("use_stderr", "false")]),
        ("database", [("connection", sqlite_url(p.db(spec.name, "keystone")))]),
        ("token", [("provider", "fernet")]),
        ("fernet_tokens", [("key_repository", os.path.join(d, "fernet-keys"))]),
        ("fernet_receipts", [("key_repository", os.path.join(d, "fernet-keys"))]),
        ("credential", [("key_repository", os.path.join(d, "credential-keys"))]),
        # without a cache every token validation costs ~250 ms
        ("cache", [("enabled", "true"), ("backend", "dogpile.cache.memory")]),
        # bcrypt's minimum: logins in milliseconds instead of ~0.3 s (test passwords only)
        ("identity", [("password_hash_rounds", 4), ("max_password_length", 72)]),
        ("oslo_messaging_notifications", [("driver", "noop")]),
    ])


def glance_conf(p: Paths, spec: CloudSpec, pw: Dict[str, str]) -> str:
    d = p.glance_dir(spec.name)
    return ini([
        ("DEFAULT", [
            ("log_file", os.path.join(p.log_dir(spec.name), "glance-api.log")),
            ("use_stderr", "false"),
            ("bind_host", "127.0.0.1"), ("bind_port", spec.glance_port), ("workers", 1),
            ("worker_self_reference_url", spec.glance_url),
            ("enabled_backends", "%s:rbd" % GLANCE_STORE_ID),
            ("show_image_direct_url", "true"),
            # locations are registered with POST /v2/images/{id}/locations (service role)
            ("show_multiple_locations", "false"),
            # the location API would otherwise read the whole RBD image to hash it
            ("do_secure_hash", "false"),
            ("transport_url", transport_url(spec)),
        ]),
        ("database", [("connection", sqlite_url(p.db(spec.name, "glance")))]),
        ("glance_store", [("default_backend", GLANCE_STORE_ID)]),
        (GLANCE_STORE_ID, [
            ("rbd_store_pool", spec.glance_pool), ("rbd_store_user", "glance"),
            ("rbd_store_ceph_conf", p.ceph_conf(spec)), ("rbd_store_chunk_size", 8),
            ("rados_connect_timeout", 10),
            ("store_description",
             "Ceph cluster %s pool %s" % (spec.ceph_cluster, spec.glance_pool))]),
        ("os_glance_staging_store", [("filesystem_store_datadir", os.path.join(d, "staging"))]),
        ("os_glance_tasks_store", [("filesystem_store_datadir", os.path.join(d, "tasks"))]),
        ("paste_deploy", [("flavor", "keystone"),
                          ("config_file", os.path.join(p.venv, "etc", "glance",
                                                       "glance-api-paste.ini"))]),
        ("keystone_authtoken", authtoken(spec, "glance", pw["glance"])),
        ("oslo_messaging_notifications", [("driver", "messagingv2")]),
        ("oslo_concurrency", [("lock_path", os.path.join(d, "lock"))]),
    ])


def cinder_conf(p: Paths, spec: CloudSpec, pw: Dict[str, str]) -> str:
    d = p.cloud(spec.name, "cinder")
    etc = os.path.join(p.venv, "etc", "cinder")
    service_user = [("send_service_user_token", "true"), ("auth_type", "password"),
                    ("auth_url", spec.keystone_url), ("username", "cinder"),
                    ("password", pw["cinder"]), ("user_domain_id", "default"),
                    ("project_name", "service"), ("project_domain_id", "default"),
                    ("region_name", spec.region)]
    return ini([
        ("DEFAULT", [
            ("host", spec.cinder_host), ("my_ip", "127.0.0.1"),
            ("log_dir", p.log_dir(spec.name)), ("use_stderr", "false"),
            ("state_path", d), ("image_conversion_dir", os.path.join(d, "conversion")),
            ("auth_strategy", "keystone"),
            ("transport_url", transport_url(spec)),
            ("osapi_volume_listen", "127.0.0.1"), ("osapi_volume_listen_port", spec.cinder_port),
            ("osapi_volume_workers", 1),
            ("api_paste_config", os.path.join(etc, "api-paste.ini")),
            ("resource_query_filters_file", os.path.join(etc, "resource_filters.json")),
            ("rootwrap_config", os.path.join(etc, "rootwrap.conf")),
            ("glance_api_servers", spec.glance_url),
            ("enabled_backends", spec.cinder_backend),
            ("default_volume_type", DEFAULT_TYPE),
            # capabilities lost while scheduler and volume start together are re-sent within
            # 10 s instead of 60 s + up to 60 s fuzz
            ("periodic_interval", 10), ("periodic_fuzzy_delay", 0),
            ("graceful_shutdown_timeout", 2),
            ("quota_volumes", -1), ("quota_snapshots", -1), ("quota_gigabytes", -1),
            ("quota_backups", -1), ("quota_backup_gigabytes", -1), ("quota_groups", -1),
        ]),
        ("database", [("connection", sqlite_url(p.db(spec.name, "cinder")))]),
        ("keystone_authtoken", authtoken(spec, "cinder", pw["cinder"])),
        ("service_user", service_user),
        # encrypted volume types without Barbican: one fixed key per cloud (test only)
        ("key_manager", [("backend", "cinder.keymgr.conf_key_mgr.ConfKeyManager"),
                         ("fixed_key", pw["_fixed_key"])]),
        ("oslo_concurrency", [("lock_path", os.path.join(d, "lock"))]),
        ("oslo_messaging_notifications", [("driver", "messagingv2")]),
        ("coordination", [("backend_url", "file://%s" % os.path.join(d, "lock"))]),
        (spec.cinder_backend, [
            ("volume_driver", "cinder.volume.drivers.rbd.RBDDriver"),
            ("volume_backend_name", spec.cinder_backend),
            ("rbd_pool", spec.cinder_pool), ("rbd_user", "cinder"),
            ("rbd_ceph_conf", p.ceph_conf(spec)), ("rbd_cluster_name", spec.ceph_cluster),
            ("rados_connect_timeout", 10), ("report_discard_supported", "true"),
        ]),
    ])


def uwsgi_conf(p: Paths, spec: CloudSpec, service: str, port: int, module: str,
               extra: Sequence[Tuple[str, Any]]) -> str:
    items: List[Tuple[str, Any]] = [
        ("http-socket", "127.0.0.1:%d" % port), ("home", p.venv), ("module", module),
        ("master", "true"), ("processes", 1), ("threads", 4), ("enable-threads", "true"),
        ("lazy-apps", "true"), ("need-app", "true"), ("die-on-term", "true"),
        ("worker-reload-mercy", 5), ("reload-mercy", 5), ("buffer-size", 65535),
        ("socket-timeout", 300),
        # http-socket closes after each response without saying so: clients reusing the
        # connection would get 'Connection reset by peer'
        ("add-header", "Connection: close"),
        ("logto", os.path.join(p.log_dir(spec.name), "%s-uwsgi.log" % service)),
        ("env", "PYTHONWARNINGS=ignore"),
    ]
    return ini([("uwsgi", items + list(extra))])


def write_configs(p: Paths, spec: CloudSpec, pw: Dict[str, str]) -> None:
    """All config files of one cloud (cheap, rewritten on every start)."""
    c = spec.name
    for sub in ("log", "keystone", "glance/staging", "glance/tasks", "glance/lock",
                "cinder/lock", "cinder/conversion"):
        os.makedirs(p.cloud(c, sub), exist_ok=True)
    write_file(p.keystone_conf(c), keystone_conf(p, spec), mode=0o600)
    write_file(p.glance_conf(c), glance_conf(p, spec, pw), mode=0o600)
    write_file(p.cinder_conf(c), cinder_conf(p, spec, pw), mode=0o600)
    write_file(p.uwsgi_ini(c, "keystone"), uwsgi_conf(
        p, spec, "keystone", spec.keystone_port, "keystone.wsgi.api:application",
        [("env", "OS_KEYSTONE_CONFIG_FILES=%s" % p.keystone_conf(c))]))
    write_file(p.uwsgi_ini(c, "glance-api"), uwsgi_conf(
        p, spec, "glance-api", spec.glance_port, "glance.wsgi.api:application",
        [("env", "OS_GLANCE_CONFIG_DIR=%s" % p.glance_dir(c)), ("http-chunked-input", "true"),
         ("http-raw-body", "true"), ("chunked-input-limit", 4096000)]))
    write_file(p.uwsgi_ini(c, "cinder-api"), uwsgi_conf(
        p, spec, "cinder-api", spec.cinder_port, "cinder.wsgi.api:application",
        [("pyargv", "--config-file %s --log-file %s"
          % (p.cinder_conf(c), os.path.join(p.log_dir(c), "cinder-api.log")))]))


# --------------------------------------------------------------------------- one cloud

def venv_step(p: Paths, spec: CloudSpec, argv: Sequence[str], log_name: str, what: str,
              timeout: float, **env: str) -> subprocess.CompletedProcess:
    """A one-off start-up step of SPEC with the venv's programs, output kept in the cloud's
    log dir as LOG_NAME; warnings off, as for the services."""
    return run_logged(argv, os.path.join(p.log_dir(spec.name), log_name),
                      "%s: %s" % (spec.name, what), timeout,
                      env=dict(os.environ, PYTHONWARNINGS="ignore", **env))


def self_in_venv(p: Paths, command: str, spec: CloudSpec) -> List[str]:
    """This script's hidden COMMAND for SPEC, run by the venv's python (the OpenStack code is
    importable there only)."""
    return [p.python, os.path.abspath(__file__), command, spec.name]


def init_keystone(p: Paths, spec: CloudSpec, pw: Dict[str, str]) -> None:
    """db_sync, fernet/credential keys and bootstrap in one venv interpreter (this script's
    _keystone-init), saving three interpreter start-ups."""
    venv_step(p, spec, self_in_venv(p, "_keystone-init", spec), "keystone-init.out",
              "keystone init", 300, CEPH_MIGRATE_OPENSTACK_DIR=p.root,
              _CM_ADMIN_PASSWORD=pw["admin"])
    sqlite_wal(p.db(spec.name, "keystone"))


def db_sync(p: Paths, spec: CloudSpec, project: str) -> None:
    if project == "glance":
        argv = [p.bin("glance-manage"), "--config-file", p.glance_conf(spec.name), "db_sync"]
    else:
        argv = [p.bin("cinder-manage"), "--config-file", p.cinder_conf(spec.name), "db", "sync"]
    venv_step(p, spec, argv, "%s-db-sync.out" % project, "%s db sync" % project, 300)
    sqlite_wal(p.db(spec.name, project))


def start_service(p: Paths, spec: CloudSpec, service: str) -> Proc:
    c = spec.name
    if service in ("keystone", "glance-api", "cinder-api"):
        argv = [p.bin("uwsgi"), "--ini", p.uwsgi_ini(c, service)]
    else:
        argv = [p.bin(service), "--config-file", p.cinder_conf(c)]
    return start_proc(p, c, service, argv, cwd=p.cloud(c))


def start_cloud_services(p: Paths, spec: CloudSpec, pw: Dict[str, str], fresh: bool,
                         clock: Clock) -> None:
    """Keystone, Glance and Cinder chains in parallel; databases first when FRESH.
    cinder-scheduler starts before cinder-volume so that it hears the first capabilities."""
    c = spec.name
    chains = (   # (database step, what it did, services in start order)
        (lambda: init_keystone(p, spec, pw), "keystone db, keys, bootstrap", ("keystone",)),
        (lambda: db_sync(p, spec, "glance"), "glance db", ("glance-api",)),
        (lambda: db_sync(p, spec, "cinder"), "cinder db",
         ("cinder-scheduler", "cinder-api", "cinder-volume")),
    )

    def chain(init: Callable[[], None], done: str, services: Sequence[str]) -> None:
        if fresh:
            init()
            clock.log("%s: %s done" % (c, done))
        for service in services:
            start_service(p, spec, service)

    in_parallel([lambda ch=ch: chain(*ch) for ch in chains])
    clock.log("%s: services started" % c)


def run_setup(p: Paths, spec: CloudSpec) -> Dict[str, Any]:
    """Users, projects, roles, endpoints and volume types (this script's _setup-cloud in the
    venv, with openstacksdk); idempotent. Returns its JSON facts."""
    out = venv_step(p, spec, self_in_venv(p, "_setup-cloud", spec), "setup.out",
                    "identity/volume type setup", START_TIMEOUT + 60,
                    CEPH_MIGRATE_OPENSTACK_DIR=p.root)
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    write_file(p.setup_facts(spec.name), json.dumps(facts, indent=2) + "\n")
    return facts


def cloud_health(p: Paths, spec: CloudSpec, pw: Dict[str, str],
                 all_users: bool = True) -> Dict[str, Any]:
    """Tokens for every user, Glance lists images, Cinder's scheduler knows the backend pool
    and cinder-volume is up. Cheap enough for `status`."""
    info: Dict[str, Any] = {"ok": False}
    users = list(USERS) if all_users else ["admin"]
    token, body = None, {}
    for user in users:
        project = USERS[user][0]
        t, b = keystone_token(spec, user, pw.get(user, ""), project)
        if t is None:
            info["reason"] = "keystone: no token for %s (%s)" % (user, b.get("error"))
            return info
        if user == "admin":
            token, body = t, b
    project_id = body.get("project", {}).get("id")
    info["keystone"] = "ok"
    status, _, data = http_call("GET", spec.glance_url + "/v2/images?limit=1", token=token)
    if status != 200:
        info["reason"] = "glance: list images HTTP %s %s" % (status, str(data)[:120])
        return info
    status, _, data = http_call("GET", spec.glance_url + "/v2/info/stores", token=token)
    info["glance_stores"] = [s.get("id") for s in (data or {}).get("stores", [])] \
        if status == 200 else []
    base = "%s/v3/%s" % (spec.cinder_url, project_id)
    status, _, data = http_call("GET", base + "/scheduler-stats/get_pools", token=token)
    if status != 200:
        info["reason"] = "cinder: get_pools HTTP %s %s" % (status, str(data)[:120])
        return info
    pools = [x.get("name") for x in (data or {}).get("pools", [])]
    info["cinder_pools"] = pools
    status, _, data = http_call("GET", base + "/os-services?binary=cinder-volume", token=token)
    volume_up = [s.get("host") for s in (data or {}).get("services", [])
                 if status == 200 and s.get("state") == "up" and s.get("status") == "enabled"]
    info["cinder_volume_up"] = volume_up
    if spec.manage_host not in pools:
        info["reason"] = "cinder: scheduler has no pool %s yet (has %s)" % (spec.manage_host,
                                                                            pools)
    elif "%s@%s" % (spec.cinder_host, spec.cinder_backend) not in volume_up:
        info["reason"] = "cinder: cinder-volume %s@%s not up" % (
            spec.cinder_host, spec.cinder_backend)
    else:
        info.update(ok=True, reason="ok")
    return info


def wait_keystone(spec: CloudSpec) -> None:
    def check() -> Tuple[bool, str]:
        status, _, data = http_call("GET", spec.auth_url, timeout=5)
        return status == 200, "GET /v3: %s" % status
    wait_for(check, START_TIMEOUT, "%s keystone" % spec.name, interval=0.3)


def bring_up_cloud(p: Paths, spec: CloudSpec, pw: Dict[str, str], fresh: bool,
                   clock: Clock) -> Dict[str, Any]:
    """One cloud from configs to healthy; runs in its own thread, sets ABORT on failure."""
    with abort_others():
        write_configs(p, spec, pw)
        start_cloud_services(p, spec, pw, fresh, clock)
        wait_keystone(spec)
        clock.log("%s: keystone answering" % spec.name)
        facts = run_setup(p, spec)
        write_file(p.initialised(spec.name), "%d\n" % int(time.time()))
        clock.log("%s: users, projects, endpoints, volume types ready" % spec.name)

        def check() -> Tuple[bool, str]:
            h = cloud_health(p, spec, pw)
            return h["ok"], h["reason"]
        wait_for(check, BACKEND_TIMEOUT, "%s health" % spec.name, interval=0.5)
        clock.log("%s: healthy (tokens, glance, cinder pool %s, cinder-volume up)"
                  % (spec.name, spec.manage_host))
        return facts


# --------------------------------------------------------------------------- generated files

def clouds_yaml(p: Paths, pw: Dict[str, Dict[str, str]]) -> str:
    clouds: Dict[str, Any] = {}
    for spec in CLOUDS:
        for suffix, user in CLOUDS_YAML_USERS.items():
            clouds["%s-%s" % (spec.name, suffix)] = {
                "auth": {"auth_url": spec.auth_url, "username": user,
                         "password": pw[spec.name][user], "project_name": USERS[user][0],
                         "user_domain_name": "Default", "project_domain_name": "Default"},
                "region_name": spec.region, "interface": "public",
                "identity_api_version": 3,
            }
    return "# generated by ceph_migrate sandbox/openstack_sandbox.py\n" + yaml_block(
        {"clouds": clouds})


def sandbox_facts(p: Paths, ceph: Dict[str, Any], setup: Dict[str, Dict[str, Any]],
                  health: Dict[str, Dict[str, Any]], timings: Dict[str, float]) -> Dict[str, Any]:
    clouds = {}
    for spec in CLOUDS:
        c = ceph["clusters"][spec.ceph_cluster]
        s = setup.get(spec.name, {})
        stores = health.get(spec.name, {}).get("glance_stores") or [GLANCE_STORE_ID]
        clouds[spec.name] = {
            "role": spec.role, "region": spec.region,
            "clouds_yaml_entries": {k: "%s-%s" % (spec.name, k) for k in CLOUDS_YAML_USERS},
            "urls": {"identity": spec.auth_url, "image": spec.glance_url,
                     "volume": spec.cinder_url + "/v3"},
            "ceph": {"cluster": spec.ceph_cluster, "fsid": c["fsid"], "conf": p.ceph_conf(spec),
                     "keyrings": {u: p.ceph_keyring(spec, u) for u in CEPH_USERS},
                     "admin_conf": c["conf"]},
            "cinder": {"host": spec.cinder_host, "backend": spec.cinder_backend,
                       "pool": spec.cinder_pool, "manage_host": spec.manage_host,
                       "default_volume_type": DEFAULT_TYPE,
                       "volume_types": s.get("volume_types", {}),
                       "encryption": dict(ENCRYPTION)},
            "glance": {"pool": spec.glance_pool, "store_id": stores[0], "stores": stores,
                       "location_prefix": "rbd://%s/%s/" % (c["fsid"], spec.glance_pool)},
            "projects": s.get("projects", {}),
            "tenant_project_id": s.get("projects", {}).get("tenant"),
            "admin_project_id": s.get("projects", {}).get("admin"),
            "users": {u: {"project": USERS[u][0], "roles": list(USERS[u][1])} for u in USERS},
            "rabbit": {"transport_url": transport_url(spec), "vhost": spec.vhost,
                       "host": BROKER_HOST, "port": BROKER_PORT, "user": RABBIT_USER,
                       "password": RABBIT_PASSWORD,
                       "exchanges": {"glance": "glance", "cinder": "openstack"},
                       "routing_keys": ["notifications.info", "notifications.error"]},
            "logs": p.log_dir(spec.name),
        }
    return {
        "state_dir": p.root, "venv": p.venv, "python": p.python, "clouds_yaml": p.clouds_yaml,
        "pids": p.pids, "passwords": p.passwords, "own_broker": own_broker(p),
        "ceph_sandbox": ceph.get("state_dir"), "clouds": clouds, "last_up_timings": timings,
    }


def write_generated_files(p: Paths, ceph: Dict[str, Any], health: Dict[str, Dict[str, Any]],
                          timings: Optional[Dict[str, float]] = None) -> None:
    pw = load_passwords(p)
    setup = {s.name: read_json(p.setup_facts(s.name)) or {} for s in CLOUDS}
    if timings is None:
        timings = (read_json(p.facts) or {}).get("last_up_timings", {})
    write_file(p.clouds_yaml, clouds_yaml(p, pw), mode=0o600)
    write_file(p.facts, json.dumps(sandbox_facts(p, ceph, setup, health, timings or {}),
                                   indent=2) + "\n")


def recorded_fsids(p: Paths) -> Dict[str, str]:
    """cloud -> fsid of the Ceph cluster it was last brought up on ({} when unknown)."""
    try:
        clouds = read_json(p.facts)["clouds"]
        return {c: clouds[c]["ceph"]["fsid"] for c in clouds}
    except (KeyError, TypeError):
        return {}


def ceph_fsids(ceph: Any) -> Dict[str, str]:
    """cloud -> fsid of its Ceph cluster now, from the Ceph sandbox's facts ({} without)."""
    try:
        return {s.name: ceph["clusters"][s.ceph_cluster]["fsid"] for s in CLOUDS}
    except (KeyError, TypeError):
        return {}


# --------------------------------------------------------------------------- status

def status(p: Optional[Paths] = None) -> Dict[str, Any]:
    """Processes alive, broker and vhosts, Ceph fsids unchanged, both clouds healthy."""
    p = p or paths()
    procs = read_pids(p)
    report: Dict[str, Any] = {
        "state_dir": p.root, "clouds_yaml": p.clouds_yaml, "facts": p.facts,
        "processes": [{"pid": x.pid, "name": x.name, "cloud": x.cloud,
                       "alive": proc_alive(p, x),
                       "rss_mib": rss_mib(x.pid) if proc_alive(p, x) else 0.0} for x in procs],
        "clouds": {}, "broker": {},
    }
    if not procs:
        return conclude(report, ["not up (no processes recorded)"])
    problems = ["%s/%s dead" % (x["cloud"], x["name"]) for x in report["processes"]
                if not x["alive"]]
    broker: Dict[str, Any] = {"address": "%s:%d" % (BROKER_HOST, BROKER_PORT),
                              "own": own_broker(p), "answers": broker_answers()}
    if broker["answers"]:
        try:
            vhosts = set(list_vhosts(p))
            broker["vhosts"] = sorted(v for v in vhosts if v.startswith("ceph_migrate_"))
            problems += ["vhost %s missing" % s.vhost for s in CLOUDS if s.vhost not in vhosts]
        except SandboxError as exc:
            problems.append("rabbitmqctl: %s" % exc)
    else:
        problems.append("no broker on %s" % broker["address"])
    report["broker"] = broker
    cp = ceph_sandbox.paths()
    if not ceph_sandbox.daemons_running(cp):
        problems.append("Ceph sandbox %s not running" % cp.root)
    if ceph_fsids(read_json(cp.facts)) != recorded_fsids(p):
        problems.append("Ceph fsids changed since up (Ceph sandbox rebuilt?)")
    pw = load_passwords(p)
    healths = in_parallel([lambda s=s: cloud_health(p, s, pw.get(s.name, {})) for s in CLOUDS])
    for spec, h in zip(CLOUDS, healths):
        report["clouds"][spec.name] = h
        if not h["ok"]:
            problems.append("%s: %s" % (spec.name, h["reason"]))
    return conclude(report, problems)


def format_status(report: Dict[str, Any]) -> str:
    lines = ["state dir: %s" % report["state_dir"]]
    b = report.get("broker") or {}
    if b:
        lines.append("rabbitmq %s (%s): %s, vhosts %s"
                     % (b["address"], "own" if b["own"] else "machine's",
                        "answers" if b["answers"] else "DOWN", " ".join(b.get("vhosts", []))))
    for name, h in report["clouds"].items():
        spec = CLOUD_BY_NAME[name]
        lines.append("%s  keystone %d glance %d cinder %d  %s  pools %s  stores %s"
                     % (name, spec.keystone_port, spec.glance_port, spec.cinder_port,
                        "OK" if h["ok"] else "NOT OK (%s)" % h["reason"],
                        " ".join(h.get("cinder_pools", [])) or "-",
                        " ".join(h.get("glance_stores", [])) or "-"))
    alive = [x for x in report["processes"] if x["alive"]]
    lines.append("processes: %d/%d alive, %.0f MiB RSS"
                 % (len(alive), len(report["processes"]), sum(x["rss_mib"] for x in alive)))
    for x in report["processes"]:
        lines.append("  %7d %-6s %-17s %s %7.1f MiB" % (
            x["pid"], x["cloud"], x["name"], "alive" if x["alive"] else "DEAD ", x["rss_mib"]))
    lines.append("clouds.yaml: %s" % report["clouds_yaml"])
    lines.append(verdict(report))
    return "\n".join(lines)


# --------------------------------------------------------------------------- up / down

def check_ports_free() -> None:
    """Fail fast when something else holds a cloud's port (another OpenStack, a stale uWSGI)."""
    for spec in CLOUDS:
        for port in spec.ports():
            if port_open(port):
                raise SandboxError("127.0.0.1:%d (%s) is already in use by a process this "
                                   "sandbox did not record" % (port, spec.name))


def _already_up(p: Paths, clock: Clock) -> Optional[Dict[str, Any]]:
    """The status report when the recorded sandbox is healthy; otherwise stop what runs (by
    PID) and return None."""
    procs = read_pids(p)
    if not procs:
        return None
    rep = status(p)
    if rep["ok"]:
        return rep
    clock.log("existing sandbox not usable (%s): stopping it" % rep["reason"])
    stop_procs(p, procs, clock)
    os.replace(p.pids, p.pids + ".stopped")
    return None


def _reusable(p: Paths, ceph: Dict[str, Any]) -> List[str]:
    """Clouds whose databases can be kept: initialised, and on the same Ceph clusters."""
    was, now = recorded_fsids(p), ceph_fsids(ceph)
    return [s.name for s in CLOUDS if os.path.exists(p.initialised(s.name))
            and s.name in now and was.get(s.name) == now[s.name]]


def up(p: Optional[Paths] = None) -> Paths:
    """Bring both clouds up (or confirm they are); returns the Paths. Raises SandboxError."""
    p = p or paths()
    clock = Clock()
    timings: Dict[str, float] = {}
    install(p, clock)
    timings["install"] = round(clock.elapsed(), 2)
    ceph = ceph_facts(clock)
    rep = _already_up(p, clock)
    if rep is not None:
        for spec in CLOUDS:
            link_brick_keyring(p, spec)
        write_generated_files(p, ceph, rep["clouds"])
        clock.log("already up (%s, clouds.yaml %s)" % (p.root, p.clouds_yaml))
        return p
    check_ports_free()
    keep = _reusable(p, ceph) if os.path.exists(p.marker) else []
    if not keep:
        wipe_state(p)
    for spec in CLOUDS:
        if spec.name not in keep and os.path.isdir(p.cloud(spec.name)):
            shutil.rmtree(p.cloud(spec.name))
    claim_state_dir(p.root, p.marker, p.pids, "openstack_sandbox.py")
    pw = load_passwords(p, create=True)
    clock.log("starting clouds %s in %s (%s)"
              % (" and ".join(s.name for s in CLOUDS), p.root,
                 "reusing databases of %s" % " ".join(keep) if keep else "fresh"))
    with stopped_on_failure(
            clock, "up failed: stopping what it started (logs stay in %s/*/log)" % p.root,
            lambda: stop_procs(p, read_pids(p)), p.pids):
        if not broker_answers():
            start_own_broker(p, clock)
        ensure_vhosts(p, [s.vhost for s in CLOUDS if s.name not in keep], clock)
        prepare_ceph(p, ceph, clock)
        timings["prepared"] = round(clock.elapsed(), 2)
        setups = in_parallel([lambda s=s: bring_up_cloud(p, s, pw[s.name], s.name not in keep,
                                                         clock) for s in CLOUDS])
        timings["healthy"] = round(clock.elapsed(), 2)
        healths = {s.name: cloud_health(p, s, pw[s.name], all_users=False) for s in CLOUDS}
        for spec, setup in zip(CLOUDS, setups):
            healths[spec.name].update(setup_ok=bool(setup))
        write_generated_files(p, ceph, healths, timings)
    clock.log("up: done (clouds.yaml %s, facts %s)" % (p.clouds_yaml, p.facts))
    return p


def down(p: Optional[Paths] = None, wipe: bool = False) -> List[Proc]:
    """Stop the recorded processes by PID (services first, own broker last); wipe deletes the
    state dir and our vhosts on the machine's broker."""
    p = p or paths()
    procs = read_pids(p)
    own = own_broker(p)
    stop_listed(procs, p.pids, lambda: stop_procs(p, procs, Clock()))
    if wipe:
        if os.path.exists(p.marker):
            purge_ceph(p)
        if not own:
            gone = delete_vhosts(p)
            if gone:
                print("deleted vhosts %s" % " ".join(gone))
        for path in unlink_brick_keyrings(p):
            print("removed %s" % path)
        wipe_state(p)
        print("wiped %s" % p.root)
    return procs


def config_path(p: Optional[Paths] = None) -> Optional[str]:
    """clouds.yaml when the recorded processes run, else None."""
    p = p or paths()
    if all_alive(read_pids(p), matcher(p)) and os.path.isfile(p.clouds_yaml):
        return p.clouds_yaml
    return None


# --------------------------------------------------------------------------- inside the venv

def _keystone_init_main(cloud: str) -> int:
    """(venv) keystone-manage db_sync, fernet_setup, credential_setup, bootstrap."""
    from keystone.cmd import cli  # venv only

    p = paths()
    spec = CLOUD_BY_NAME[cloud]
    conf = p.keystone_conf(cloud)
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    steps = [
        ["db_sync"],
        ["fernet_setup", "--keystone-user", user, "--keystone-group", group],
        ["credential_setup", "--keystone-user", user, "--keystone-group", group],
        ["bootstrap", "--bootstrap-password=" + os.environ["_CM_ADMIN_PASSWORD"],
         "--bootstrap-username", "admin", "--bootstrap-project-name", "admin",
         "--bootstrap-role-name", "admin", "--bootstrap-service-name", "keystone",
         "--bootstrap-region-id", spec.region,
         "--bootstrap-admin-url", spec.auth_url, "--bootstrap-internal-url", spec.auth_url,
         "--bootstrap-public-url", spec.auth_url],
    ]
    for step in steps:
        cli.main(argv=["keystone-manage", "--config-file", conf] + step)
        cli.CONF.clear()
    return 0


def _setup_cloud_main(cloud: str) -> int:
    """(venv) Idempotent identity and volume type setup with openstacksdk; prints JSON."""
    import openstack  # venv only

    p = paths()
    spec = CLOUD_BY_NAME[cloud]
    pw = load_passwords(p)[cloud]

    def connect() -> Any:
        return openstack.connect(
            auth_url=spec.auth_url, username="admin", password=pw["admin"],
            project_name="admin", user_domain_id="default", project_domain_id="default",
            region_name=spec.region, interface="public", identity_api_version="3",
            load_yaml_config=False, load_envvars=False)

    idc = connect().identity
    roles = {r.name: r for r in idc.roles()}
    if "service" not in roles:
        roles["service"] = idc.create_role(name="service")
    projects = {}
    for name in ("admin", "service", "tenant"):
        projects[name] = idc.find_project(name, domain_id="default") or idc.create_project(
            name=name, domain_id="default", description="ceph_migrate sandbox %s" % name)
    users = {}
    for name, (project, role_names) in USERS.items():
        user = idc.find_user(name, domain_id="default")
        if user is None:
            user = idc.create_user(name=name, password=pw[name], domain_id="default",
                                   default_project_id=projects[project].id)
        elif name != "admin":
            idc.update_user(user, password=pw[name])
        for role in role_names:
            idc.assign_project_role_to_user(projects[project], user, roles[role])
        users[name] = user.id
    # the pack manages volumes as this admin scoped to the tenant's project (see README)
    idc.assign_project_role_to_user(projects["tenant"], users["admin"], roles["admin"])
    services = {s.type: s for s in idc.services()}
    volume_url = spec.cinder_url + "/v3/%(project_id)s"
    for type_, name, url in (("image", "glance", spec.glance_url),
                             ("block-storage", "cinder", volume_url),
                             ("volumev3", "cinderv3", volume_url)):
        svc = services.get(type_) or idc.create_service(type=type_, name=name, enabled=True)
        have = {e.interface for e in idc.endpoints(service_id=svc.id)}
        for iface in ("public", "internal", "admin"):
            if iface not in have:
                idc.create_endpoint(service_id=svc.id, interface=iface, url=url,
                                    region_id=spec.region)

    bs = connect().block_storage   # a new token: its catalog has the endpoints made above
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            types = {t.name: t for t in bs.types()}
            break
        except Exception as exc:  # noqa: B902 - cinder-api still starting
            if time.monotonic() > deadline:
                raise SystemExit("cinder-api not answering: %s" % exc)
            time.sleep(0.5)
    extra = {"volume_backend_name": spec.cinder_backend}
    for name, desc in ((DEFAULT_TYPE, "Ceph RBD (%s)" % spec.cinder_pool),
                       (ENCRYPTED_TYPE, "Ceph RBD, LUKS encrypted (%s)" % spec.cinder_pool)):
        if name not in types:
            types[name] = bs.create_type(name=name, extra_specs=extra, description=desc,
                                         is_public=True)
    enc = bs.get_type_encryption(types[ENCRYPTED_TYPE])
    if not getattr(enc, "encryption_id", None):
        bs.create_type_encryption(types[ENCRYPTED_TYPE], **ENCRYPTION)
    print(json.dumps({
        "projects": {k: v.id for k, v in projects.items()},
        "users": users,
        "volume_types": {k: types[k].id for k in (DEFAULT_TYPE, ENCRYPTED_TYPE)},
    }))
    return 0


# --------------------------------------------------------------------------- CLI

def main(argv: Optional[Sequence[str]] = None) -> int:
    parser, sub = cli_parser(
        "Two OpenStack clouds (pa1 on Ceph 'ceph', ct1 on Ceph 'cephpa1') for ceph_migrate. "
        "State dir: $CEPH_MIGRATE_OPENSTACK_DIR; venv: $CEPH_MIGRATE_OPENSTACK_VENV.",
        install="apt packages and the virtualenv, if missing",
        up="install, then start both clouds (idempotent)",
        down="stop the recorded processes by PID",
        config="print the path of the generated clouds.yaml",
        down_flags={"--wipe": "also delete the state dir and vhosts"})
    for hidden in ("_keystone-init", "_setup-cloud"):   # run by `up` with the venv's python
        h = sub.add_parser(hidden)
        h.add_argument("cloud", choices=sorted(CLOUD_BY_NAME))
    sub.add_parser("restart-broker", help="stop the sandbox's own RabbitMQ and start it again")
    args = parser.parse_args(argv)
    p = paths()
    return run_command(args.cmd, p.root, {
        "_keystone-init": lambda: _keystone_init_main(args.cloud),
        "_setup-cloud": lambda: _setup_cloud_main(args.cloud),
        "install": lambda: install(p),
        "up": lambda: up(p),
        "down": lambda: down(p, wipe=args.wipe),
        "restart-broker": lambda: restart_broker(p),
        "status": lambda: print_status(status(p), args.json, format_status),
        "config": lambda: print_config(config_path(p),
                                       "OpenStack sandbox in %s is not up" % p.root),
    })


if __name__ == "__main__":
    sys.exit(main())
