#!/usr/bin/env python3
"""StackStorm sandbox for ceph_migrate: a real StackStorm 3.9.0, installed from its source, on
loopback only, with its own RabbitMQ node, Redis and database.

    st2_sandbox.py install            st2 source, its virtualenv, apt packages, if missing
    st2_sandbox.py up                 install, then start every service (idempotent)
    st2_sandbox.py down [--wipe]      stop by PID; --wipe also deletes the state dir and
                                      the /opt/stackstorm tree this script made
    st2_sandbox.py status [--json]    exit 0 when every service runs and the API answers
    st2_sandbox.py config             path of the facts file (st2.json: URLs, users, env)

Services: st2auth 9100, st2api 9101, st2stream 9102, two st2actionrunners, st2scheduler,
st2workflowengine, st2notifier, st2rulesengine, st2sensorcontainer, st2timersengine; messaging
on an own RabbitMQ node (5692), coordination on an own redis-server (6389); the database is
$CEPH_MIGRATE_ST2_MONGO_URL when given (a real MongoDB), otherwise sandbox/mongowire.py on 27027:
a MongoDB wire-protocol stand-in over mongomock, a test fixture only (no registry here serves
MongoDB; see the README). CEPH_MIGRATE_ST2_PORT_OFFSET shifts every port.

StackStorm lives where a real installation does: packs, pack configs and pack virtualenvs in
/opt/stackstorm (StackStorm's own `packs.download` action installs into /opt/stackstorm/packs,
an immutable parameter), so the README's commands run as written. The script refuses to touch
an /opt/stackstorm it did not make. Everything else is in the state dir
($CEPH_MIGRATE_ST2_DIR, default /tmp/ceph_migrate_st2): st2.conf, users, logs, database dump,
<state>/env.sh for the st2 CLI (`st2`, `st2ctl`, `st2-register-content` on PATH).

Source: $ST2_SOURCE (a tarball or a directory of StackStorm/st2 at v3.9.0), else
../shared/vendor/st2-3.9.0-src.tar.gz beside the repository, else a clone of tag v3.9.0 from
GitHub; orquesta likewise ($ORQUESTA_SOURCE, vendor tarball, or a clone of the commit StackStorm
pins). st2client 3.9.0 comes from PyPI. The virtualenv is $CEPH_MIGRATE_ST2_VENV (default
<repo>/.venv-st2). Users (flat-file auth): st2admin, ceph-admin, tenant-admin, stranger; their
passwords are in <state>/passwords.json. Processes are stopped by PID only.
"""

from __future__ import annotations

import base64
import functools
import glob
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import tarfile
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
from sandbox_common import (  # noqa: E402
    Clock, Recorded, SandboxError, StateDir, all_alive, apt_get_install, claim_state_dir,
    cli_parser, conclude, http_call, is_alive, port_open, print_config, print_status, read_json,
    read_recorded, rss_mib, run, run_command, run_logged, start_recorded, stop_listed,
    stop_recorded, stopped_on_failure, verdict, wait_for, wipe_state_dir, write_file)
from rabbit_node import RabbitNode  # noqa: E402

REPO = os.path.dirname(_HERE)
MARKER = ".ceph_migrate_st2"
ST2_VERSION = "3.9.0"
ST2_GIT = "https://github.com/StackStorm/st2"
ORQUESTA_GIT = "https://github.com/StackStorm/orquesta"
ORQUESTA_COMMIT = "5ba1467614b2ef8b4709b2ca89e68baa671e8975"   # what st2 v3.9.0 pins
VENDOR = os.path.join(os.path.dirname(REPO), "shared", "vendor")
BASE = "/opt/stackstorm"     # packs, configs, virtualenvs: where StackStorm puts them
# requirements.txt lines that cannot be installed here: git pins (orquesta comes from its own
# source), RBAC, LDAP/PAM auth and logshipper (GitHub only; RBAC off, flat-file auth)
SKIPPED_REQUIREMENTS = re.compile(r"git\+|^#|logshipper|st2-auth-backend-pam|st2-auth-ldap|"
                                  r"st2-rbac-backend")
EXTRA_PIP = ("virtualenv==20.34.0",)                      # pack virtualenvs (with its deps)
NO_DEPS_PIP = ("st2client==%s" % ST2_VERSION,             # st2's requirements cover its deps
               "mongomock==4.3.0", "sentinels==1.0.0")    # the database stand-in
COMPONENTS = ("st2common", "st2api", "st2auth", "st2actions", "st2reactor", "st2stream")
SYSTEM_PACKS = ("core", "packs", "default", "chatops")   # `linux` needs logshipper (GitHub)
APT = ("git", "rabbitmq-server", "redis-server", "gcc")
USERS = ("st2admin", "ceph-admin", "tenant-admin", "stranger")
RUNNERS = 2     # action runners: a batch's volumes really run side by side

# name -> (script below the st2 source, logging config shipped with it)
SERVICES = {
    "st2api": ("st2api/bin/st2api", "st2api/conf/logging.conf"),
    "st2auth": ("st2auth/bin/st2auth", "st2auth/conf/logging.conf"),
    "st2stream": ("st2stream/bin/st2stream", "st2stream/conf/logging.conf"),
    "st2actionrunner": ("st2actions/bin/st2actionrunner", "st2actions/conf/logging.conf"),
    "st2scheduler": ("st2actions/bin/st2scheduler", "st2actions/conf/logging.scheduler.conf"),
    "st2workflowengine": ("st2actions/bin/st2workflowengine",
                          "st2actions/conf/logging.workflowengine.conf"),
    "st2notifier": ("st2actions/bin/st2notifier", "st2actions/conf/logging.notifier.conf"),
    "st2rulesengine": ("st2reactor/bin/st2rulesengine",
                       "st2reactor/conf/logging.rulesengine.conf"),
    "st2sensorcontainer": ("st2reactor/bin/st2sensorcontainer",
                           "st2reactor/conf/logging.sensorcontainer.conf"),
    "st2timersengine": ("st2reactor/bin/st2timersengine",
                        "st2reactor/conf/logging.timersengine.conf"),
}
# Stop order: what takes requests first, the engines next, the backing services last (the
# database stand-in dumps its data on SIGTERM).
STOP_TIERS = (("st2api", "st2auth", "st2stream", "st2sensorcontainer", "st2rulesengine",
               "st2timersengine"),
              ("st2workflowengine", "st2scheduler", "st2notifier", "st2actionrunner"),
              ("mongowire",), ("redis", "rabbitmq"), ("epmd",))
STOP_GRACE = {"st2actionrunner": 10.0, "mongowire": 20.0, "rabbitmq": 20.0, "redis": 5.0}
START_TIMEOUT = 120.0


# --------------------------------------------------------------------------- layout

def port_offset() -> int:
    return int(os.environ.get("CEPH_MIGRATE_ST2_PORT_OFFSET") or 0)


@dataclass(frozen=True)
class Ports:
    auth: int
    api: int
    stream: int
    mongo: int
    redis: int
    rabbit: int
    epmd: int

    @classmethod
    def shifted(cls, offset: int) -> "Ports":
        return cls(9100 + offset, 9101 + offset, 9102 + offset, 27027 + offset, 6389 + offset,
                   5692 + offset, 4389 + offset)


@dataclass(frozen=True)
class Paths(StateDir):
    """The state dir (and the virtualenv with the st2 source below it)."""
    venv: str = ""
    MARKER: ClassVar[str] = MARKER

    @property
    def base_marker(self) -> str:
        return os.path.join(BASE, MARKER)

    @property
    def conf(self) -> str:
        return self.path("conf", "st2.conf")

    @property
    def crypto_key(self) -> str:
        return self.path("conf", "st2_kvstore.crypto.key.json")

    @property
    def env_sh(self) -> str:
        return self.path("env.sh")

    @property
    def facts(self) -> str:
        return self.path("st2.json")

    @property
    def logs(self) -> str:
        return self.path("logs")

    @property
    def bin_dir(self) -> str:
        return self.path("bin")

    @property
    def src(self) -> str:
        return os.path.join(self.venv, "src", "st2")

    @property
    def python(self) -> str:
        return os.path.join(self.venv, "bin", "python")

    def logging_conf(self, service: str) -> str:
        return self.path("conf", "logging.%s.conf" % service)


def paths() -> Paths:
    root = os.environ.get("CEPH_MIGRATE_ST2_DIR") or "/tmp/ceph_migrate_st2"
    venv = os.environ.get("CEPH_MIGRATE_ST2_VENV") or os.path.join(REPO, ".venv-st2")
    return Paths(os.path.abspath(root), venv=os.path.abspath(venv))


def broker(p: Paths, ports: Ports) -> RabbitNode:
    return RabbitNode(directory=os.path.join(p.root, "rabbitmq"), nodename="ceph_migrate_st2",
                      port=ports.rabbit, epmd_port=ports.epmd)


# --------------------------------------------------------------------------- install

def st2_python() -> str:
    """A Python StackStorm 3.9 supports (3.8 to 3.11): $CEPH_MIGRATE_ST2_PYTHON, ours, or one
    on PATH."""
    explicit = os.environ.get("CEPH_MIGRATE_ST2_PYTHON")
    if explicit:
        return explicit
    if (3, 8) <= sys.version_info[:2] <= (3, 11):
        return sys.executable
    for name in ("python3.11", "python3.10", "python3.9", "python3.8"):
        found = shutil.which(name)
        if found:
            return found
    raise SandboxError("StackStorm 3.9 needs Python 3.8 to 3.11: set CEPH_MIGRATE_ST2_PYTHON")


def _source(env: str, vendored: str, git_url: str, git_ref: str, target: str,
            clock: Clock) -> str:
    """Unpack or clone one source tree into TARGET; returns where it came from."""
    given = os.environ.get(env)
    candidates = [given] if given else [os.path.join(VENDOR, vendored)]
    tmp = target + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for origin in candidates:
        if origin and os.path.isdir(origin):
            shutil.copytree(origin, tmp, symlinks=True,
                            ignore=shutil.ignore_patterns(".git", "__pycache__"))
            break
        if origin and os.path.isfile(origin):
            os.makedirs(tmp)
            with tarfile.open(origin) as tar:
                members = tar.getmembers()
                top = os.path.commonpath([m.name for m in members])
                for member in members:
                    member.name = os.path.relpath(member.name, top)
                    if member.name != "." and not member.name.startswith(".."):
                        tar.extract(member, tmp)
            break
        if given:
            raise SandboxError("%s=%s is neither a tarball nor a directory" % (env, given))
    else:
        clock.log("cloning %s at %s" % (git_url, git_ref))
        run(["git", "clone", "--quiet", git_url, tmp], timeout=900)
        run(["git", "-C", tmp, "checkout", "--quiet", git_ref], timeout=120)
        origin = "%s@%s" % (git_url, git_ref)
    if os.path.isdir(target):
        shutil.rmtree(target)
    os.replace(tmp, target)
    return origin or ""


def wanted_stamp(python: str) -> str:
    """What the virtualenv was built from: the interpreter (its installation and version, not
    the path it was called by: a virtualenv's python stands for its base) and every package
    choice."""
    base = run([python, "-c", "import sys; print(sys.base_prefix, sys.version)"],
               timeout=60).stdout.strip()
    text = json.dumps([base, ST2_VERSION, ORQUESTA_COMMIT, EXTRA_PIP, NO_DEPS_PIP,
                       SKIPPED_REQUIREMENTS.pattern, COMPONENTS])
    return hashlib.sha256(text.encode()).hexdigest()


def venv_ready(p: Paths) -> bool:
    try:
        with open(os.path.join(p.venv, ".ceph_migrate_st2.stamp")) as fh:
            stamp = fh.read().strip()
    except OSError:
        return False
    binaries = ("python", "st2", "virtualenv")
    return stamp == wanted_stamp(st2_python()) and os.path.isdir(p.src) and all(
        os.access(os.path.join(p.venv, "bin", b), os.X_OK) for b in binaries)


def ensure_venv(p: Paths, clock: Clock) -> None:
    """The st2 virtualenv: st2's requirements (minus what only GitHub serves), orquesta at the
    pinned commit, the components and runners as editable installs (runners are found through
    their entry points), st2client, virtualenv, and the database stand-in's mongomock."""
    if venv_ready(p):
        return
    python = st2_python()
    clock.log("building the StackStorm %s virtualenv %s with %s" % (ST2_VERSION, p.venv, python))
    if os.path.isdir(p.venv):
        shutil.rmtree(p.venv)
    os.makedirs(os.path.join(p.venv, "src"))
    st2_from = _source("ST2_SOURCE", "st2-%s-src.tar.gz" % ST2_VERSION, ST2_GIT,
                       "v" + ST2_VERSION, p.src, clock)
    orquesta = os.path.join(p.venv, "src", "orquesta")
    orq_from = _source("ORQUESTA_SOURCE", "orquesta-%s-src.tar.gz" % ORQUESTA_COMMIT[:7],
                       ORQUESTA_GIT, ORQUESTA_COMMIT, orquesta, clock)
    clock.log("sources: st2 from %s, orquesta from %s" % (st2_from, orq_from))
    run([python, "-m", "venv", p.venv], timeout=300)
    pip = [p.python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run(pip + ["--upgrade", "pip<25", "setuptools<78", "wheel"], timeout=600)
    with open(os.path.join(p.src, "requirements.txt")) as fh:
        reqs = [line.strip() for line in fh if line.strip()
                and not SKIPPED_REQUIREMENTS.search(line)]
    reqs_file = os.path.join(p.venv, "requirements-filtered.txt")
    write_file(reqs_file, "\n".join(reqs) + "\n")
    log = os.path.join(p.venv, "pip.log")
    run_logged(pip + ["-r", reqs_file, orquesta] + list(EXTRA_PIP), log,
               "pip install st2 requirements", timeout=1800)
    run_logged(pip + ["--no-deps"] + list(NO_DEPS_PIP), log, "pip install st2client",
               timeout=600)
    editable: List[str] = []
    for path in [os.path.join(p.src, c) for c in COMPONENTS] + sorted(
            glob.glob(os.path.join(p.src, "contrib", "runners", "*_runner"))):
        editable += ["-e", path]
    run_logged(pip + ["--no-deps", "--no-build-isolation"] + editable, log,
               "pip install st2 components", timeout=1200)
    run([p.python, "-c", "import st2common, st2api, orquesta, mongomock, st2client"],
        timeout=120)
    write_file(os.path.join(p.venv, ".ceph_migrate_st2.stamp"), wanted_stamp(python) + "\n")
    clock.log("virtualenv ready")


def missing_apt() -> List[str]:
    have = {"git": shutil.which("git"), "gcc": shutil.which("gcc"),
            "rabbitmq-server": os.path.exists(RabbitNode.SERVER),
            "redis-server": shutil.which("redis-server")}
    return [pkg for pkg in APT if not have[pkg]]


def install(p: Optional[Paths] = None, clock: Optional[Clock] = None) -> None:
    """apt packages when missing (services they bring are not started), then the venv."""
    p = p or paths()
    clock = clock or Clock()
    missing = missing_apt()
    if missing:
        clock.log("apt-get install %s" % " ".join(missing))
        policy = "/usr/sbin/policy-rc.d"   # no system-wide broker or redis on 0.0.0.0
        own_policy = not os.path.exists(policy)
        if own_policy:
            write_file(policy, "#!/bin/sh\nexit 101\n", mode=0o755)
        try:
            apt_get_install(missing, missing_apt, options=["--no-install-recommends"])
        finally:
            if own_policy:
                os.unlink(policy)
    ensure_venv(p, clock)


# --------------------------------------------------------------------------- configuration

def load_passwords(p: Paths, create: bool = False) -> Dict[str, str]:
    pw = read_json(p.passwords) or {}
    if create and set(pw) != set(USERS):
        pw = {user: pw.get(user) or secrets.token_hex(12) for user in USERS}
        write_file(p.passwords, json.dumps(pw, indent=2) + "\n", mode=0o600)
    return pw


def mongo_url() -> Optional[str]:
    return os.environ.get("CEPH_MIGRATE_ST2_MONGO_URL") or None


def st2_conf(p: Paths, ports: Ports) -> str:
    db = mongo_url()
    database = [("host", db), ("db_name", "st2")] if db else [
        ("host", "127.0.0.1"), ("port", ports.mongo), ("db_name", "st2")]
    sections: List[Tuple[str, Sequence[Tuple[str, Any]]]] = [
        ("system", [("base_path", BASE), ("validate_trigger_parameters", True),
                    ("validate_trigger_payload", True), ("validate_output_schema", False)]),
        ("content", [("system_packs_base_path", os.path.join(BASE, "packs")),
                     ("packs_base_paths", os.path.join(BASE, "packs")),
                     ("pack_group", "root"),
                     ("index_url", "file://%s" % os.path.join(p.root, "conf", "index.json"))]),
        ("database", database),
        ("messaging", [("url", "amqp://guest:guest@127.0.0.1:%d//" % ports.rabbit)]),
        ("coordination", [("url", "redis://127.0.0.1:%d" % ports.redis)]),
        ("keyvalue", [("encryption_key_path", p.crypto_key)]),
        ("auth", [("host", "127.0.0.1"), ("port", ports.auth), ("use_ssl", False),
                  ("enable", True), ("mode", "standalone"), ("backend", "flat_file"),
                  ("backend_kwargs", json.dumps({"file_path": p.path("conf", "htpasswd")})),
                  ("api_url", "http://127.0.0.1:%d/" % ports.api),
                  ("logging", p.logging_conf("st2auth"))]),
        ("api", [("host", "127.0.0.1"), ("port", ports.api), ("mask_secrets", True),
                 ("logging", p.logging_conf("st2api"))]),
        ("stream", [("host", "127.0.0.1"), ("port", ports.stream),
                    ("logging", p.logging_conf("st2stream"))]),
        ("rbac", [("enable", False)]),
        ("actionrunner", [("logging", p.logging_conf("st2actionrunner")),
                          ("python_binary", p.python),
                          ("virtualenv_binary", os.path.join(p.venv, "bin", "virtualenv")),
                          ("virtualenv_opts", ""), ("stream_output", True)]),
        ("scheduler", [("logging", p.logging_conf("st2scheduler"))]),
        ("notifier", [("logging", p.logging_conf("st2notifier"))]),
        ("workflow_engine", [("logging", p.logging_conf("st2workflowengine"))]),
        ("sensorcontainer", [("logging", p.logging_conf("st2sensorcontainer")),
                             ("sensor_node_name", "sandbox"),
                             ("partition_provider", "name:default")]),
        ("rulesengine", [("logging", p.logging_conf("st2rulesengine"))]),
        ("timersengine", [("logging", p.logging_conf("st2timersengine")), ("enable", True)]),
        ("system_user", [("user", "root")]),
        ("log", [("excludes", "requests,paramiko"), ("redirect_stderr", False),
                 ("mask_secrets", True)]),
        ("metrics", [("driver", "noop")]),
    ]
    out = ["# generated by ceph_migrate sandbox/st2_sandbox.py"]
    for title, items in sections:
        out.append("[%s]" % title)
        out.extend("%s = %s" % (k, v) for k, v in items)
        out.append("")
    return "\n".join(out)


def logging_conf(p: Paths, service: str) -> str:
    """The logging config StackStorm ships for SERVICE, writing into <state>/logs at INFO (its
    DEBUG everywhere would make the logs the sandbox's biggest I/O)."""
    with open(os.path.join(p.src, SERVICES[service][1])) as fh:
        text = fh.read()
    text = re.sub(r"""(["'])logs/""", lambda m: m.group(1) + p.logs + "/", text)
    return text.replace("level=DEBUG", "level=INFO")


def htpasswd(p: Paths, pw: Dict[str, str]) -> str:
    """bcrypt htpasswd lines for the flat-file backend (hashed by the venv's bcrypt)."""
    code = ("import bcrypt, json, sys\n"
            "for u, w in json.load(sys.stdin).items():\n"
            "    print('%s:%s' % (u, bcrypt.hashpw(w.encode(), bcrypt.gensalt(10)).decode()))\n")
    res = run([p.python, "-c", code], timeout=60, stdin_text=json.dumps(pw))
    return res.stdout


def env_sh(p: Paths, ports: Ports) -> str:
    return "\n".join([
        "# source %s  (then: export ST2_AUTH_TOKEN=$(st2 auth st2admin -p <password> -t))"
        % p.env_sh,
        "export ST2_CONFIG_FILE=%s" % p.path("conf", "st2rc"),
        "export ST2_CONF=%s" % p.conf,
        "export ST2_BASE_URL=http://127.0.0.1",
        "export ST2_API_URL=http://127.0.0.1:%d/v1" % ports.api,
        "export ST2_AUTH_URL=http://127.0.0.1:%d" % ports.auth,
        "export ST2_STREAM_URL=http://127.0.0.1:%d/v1" % ports.stream,
        "export PATH=%s:%s:$PATH" % (p.bin_dir, os.path.join(p.venv, "bin")), ""])


def cli_env(p: Paths, ports: Ports) -> Dict[str, str]:
    """The environment env.sh sets, as a mapping (tests run the CLI with it)."""
    env = {}
    for line in env_sh(p, ports).splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = value
    env["PATH"] = env["PATH"].replace("$PATH", os.environ.get("PATH", "/usr/bin:/bin"))
    return env


def write_config(p: Paths, ports: Ports, pw: Dict[str, str]) -> None:
    """st2.conf, logging configs, users, the datastore key, st2rc, env.sh and the wrappers
    that put StackStorm's own scripts (st2ctl, st2-register-content) on PATH."""
    os.makedirs(os.path.dirname(p.conf), exist_ok=True)
    os.makedirs(p.logs, exist_ok=True)
    os.makedirs(p.bin_dir, exist_ok=True)
    write_file(p.conf, st2_conf(p, ports))
    for service in SERVICES:
        write_file(p.logging_conf(service), logging_conf(p, service))
    write_file(os.path.join(p.root, "conf", "index.json"), '{"packs": {}}\n')
    write_file(p.path("conf", "htpasswd"), htpasswd(p, pw), mode=0o600)
    if not os.path.exists(p.crypto_key):
        run([p.python, os.path.join(p.src, "st2common", "bin",
                                    "st2-generate-symmetric-crypto-key"),
             "--key-path", p.crypto_key], timeout=60)
    write_file(p.path("conf", "st2rc"), "[general]\ncache_token = False\n")
    write_file(p.env_sh, env_sh(p, ports))
    # console scripts of st2common fail (they require st2-rbac-backend): run the source's
    for name in ("st2-register-content", "st2-validate-pack-config", "st2ctl"):
        script = os.path.join(p.src, "st2common", "bin", name)
        runner = "exec bash" if name == "st2ctl" else "exec %s" % p.python
        write_file(os.path.join(p.bin_dir, name),
                   "#!/bin/sh\n%s %s \"$@\"\n" % (runner, script), mode=0o755)


def prepare_base(p: Paths) -> None:
    """/opt/stackstorm with the system packs, made by us (marker) or refused."""
    if os.path.isdir(BASE) and os.listdir(BASE) and not os.path.exists(p.base_marker):
        raise SandboxError("%s exists and was not made by this sandbox (a real StackStorm?): "
                           "refusing to use it" % BASE)
    for sub in ("packs", "configs", "virtualenvs"):
        os.makedirs(os.path.join(BASE, sub), exist_ok=True)
    write_file(p.base_marker, "made by ceph_migrate sandbox/st2_sandbox.py for %s\n" % p.root)
    for pack in SYSTEM_PACKS:
        target = os.path.join(BASE, "packs", pack)
        if not os.path.isdir(target):
            shutil.copytree(os.path.join(p.src, "contrib", pack), target)


# --------------------------------------------------------------------------- processes

@dataclass(frozen=True)
class Proc(Recorded):
    """One line of <state>/pids: 'PID NAME GROUP' (GROUP: st2 or backing)."""


def read_pids(p: Paths) -> List[Proc]:
    return read_recorded(p.pids, Proc)


def _runs_as(p: Paths, proc: Proc, argv: List[str]) -> bool:
    """ARGV belongs to PROC or to one of its children, told by a path in this state dir on
    its command line (StackStorm's services and the sensor and action wrappers they spawn all
    carry the st2.conf, in --config-file or --parent-args), whichever checkout's virtualenv
    started them: guards against PID reuse without mistaking another sandbox's processes."""
    kind = proc.kind
    if kind == "rabbitmq":
        return any(os.path.basename(a) in RabbitNode.PROGRAMS for a in argv[:2])
    if kind == "epmd":
        return bool(argv) and os.path.basename(argv[0]) == "epmd"
    if kind == "redis":
        return bool(argv) and os.path.basename(argv[0].split()[0]) == "redis-server"
    mark = p.path("data") if kind == "mongowire" else p.conf
    return any(mark in a for a in argv[1:])


def matcher(p: Paths) -> Any:
    return functools.partial(_runs_as, p)


def start_proc(p: Paths, name: str, argv: Sequence[str],
               env: Optional[Dict[str, str]] = None) -> Proc:
    group = "st2" if name.startswith("st2") else "backing"
    return start_recorded(p.pids, Proc, group, name, argv,
                          os.path.join(p.logs, "%s.stdout" % name), p.root,
                          dict(env or {}, PYTHONWARNINGS="ignore"))


def start_backing(p: Paths, ports: Ports, clock: Clock) -> None:
    """Redis, the RabbitMQ node and (without a MongoDB URL) the database stand-in."""
    os.makedirs(p.path("redis"), exist_ok=True)
    start_proc(p, "redis", [shutil.which("redis-server") or "redis-server",
                            "--bind", "127.0.0.1", "--port", str(ports.redis), "--save", "",
                            "--appendonly", "no", "--dir", p.path("redis"), "--daemonize", "no"])
    if mongo_url() is None:
        dump = p.path("data", "mongowire.pickle")
        os.makedirs(os.path.dirname(dump), exist_ok=True)
        start_proc(p, "mongowire", [p.python, os.path.join(_HERE, "mongowire.py"),
                                    "--port", str(ports.mongo), "--dump", dump])
    node = broker(p, ports)
    node.start(lambda name, argv, env: start_proc(p, name, argv, env), clock)
    wait_for(lambda: (port_open(ports.redis), "redis port %d closed" % ports.redis), 30,
             "redis")
    if mongo_url() is None:
        wait_for(lambda: (port_open(ports.mongo), "port %d closed" % ports.mongo), 30,
                 "database stand-in")


def register_content(p: Paths, clock: Clock) -> None:
    """Runners, system packs and their virtualenvs into the database (once per database)."""
    if os.path.exists(p.path("registered")):
        return
    clock.log("registering StackStorm's system packs (and their virtualenvs)")
    run_logged([os.path.join(p.bin_dir, "st2-register-content"), "--config-file", p.conf,
                "--register-all", "--register-setup-virtualenvs",
                "--register-fail-on-failure"],
               os.path.join(p.logs, "register.log"), "st2-register-content", timeout=900)
    write_file(p.path("registered"), time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))


def start_services(p: Paths) -> None:
    for service, (script, _) in SERVICES.items():
        count = RUNNERS if service == "st2actionrunner" else 1
        for index in range(count):
            name = service if count == 1 else "%s.%d" % (service, index + 1)
            start_proc(p, name, [p.python, os.path.join(p.src, script), "--config-file", p.conf])


def token(p: Paths, ports: Ports, user: str, password: str) -> Optional[str]:
    auth = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    status, _, body = http_call("POST", "http://127.0.0.1:%d/tokens" % ports.auth, {},
                                headers={"Authorization": "Basic " + auth})
    return body.get("token") if status == 201 and isinstance(body, dict) else None


def api_health(p: Paths, ports: Ports, pw: Dict[str, str]) -> Tuple[bool, str]:
    """st2auth issues a token and st2api answers with it; st2stream listens."""
    tok = token(p, ports, "st2admin", pw.get("st2admin", ""))
    if not tok:
        return False, "st2auth issues no token on %d" % ports.auth
    status, _, body = http_call("GET", "http://127.0.0.1:%d/v1/runnertypes" % ports.api,
                                token=tok)
    if status != 200:
        return False, "st2api on %d: HTTP %s" % (ports.api, status)
    if not port_open(ports.stream):
        return False, "st2stream on %d not listening" % ports.stream
    return True, "%d runner types" % len(body)


# --------------------------------------------------------------------------- status, up, down

def status(p: Optional[Paths] = None) -> Dict[str, Any]:
    p = p or paths()
    ports = Ports.shifted(port_offset())
    procs = read_pids(p)
    alive = {x.pid: is_alive(x, matcher(p)) for x in procs}
    report: Dict[str, Any] = {
        "state_dir": p.root, "facts": p.facts, "env": p.env_sh, "base": BASE,
        "database": mongo_url() and "MongoDB (CEPH_MIGRATE_ST2_MONGO_URL)" or
        "mongowire stand-in on 127.0.0.1:%d" % ports.mongo,
        "processes": [{"pid": x.pid, "name": x.name, "alive": alive[x.pid],
                       "rss_mib": rss_mib(x.pid) if alive[x.pid] else 0.0} for x in procs]}
    if not procs:
        return conclude(report, ["not up (no processes recorded)"])
    problems = ["%s dead" % x.name for x in procs if not alive[x.pid]]
    ok, reason = api_health(p, ports, load_passwords(p))
    report["api"] = reason
    if not ok:
        problems.append(reason)
    return conclude(report, problems)


def format_status(report: Dict[str, Any]) -> str:
    lines = ["state dir: %s (packs, configs, virtualenvs in %s)"
             % (report["state_dir"], report["base"]),
             "database: %s" % report["database"], "api: %s" % report.get("api", "-")]
    live = [x for x in report["processes"] if x["alive"]]
    lines.append("processes: %d/%d alive, %.0f MiB RSS" % (
        len(live), len(report["processes"]), sum(x["rss_mib"] for x in live)))
    for x in report["processes"]:
        lines.append("  %7d %-20s %s %7.1f MiB" % (x["pid"], x["name"],
                                                   "alive" if x["alive"] else "DEAD ",
                                                   x["rss_mib"]))
    lines.append("env: source %s" % report["env"])
    lines.append(verdict(report))
    return "\n".join(lines)


def facts(p: Paths, ports: Ports, timings: Dict[str, float]) -> Dict[str, Any]:
    return {
        "state_dir": p.root, "venv": p.venv, "base": BASE, "conf": p.conf, "env_sh": p.env_sh,
        "env": cli_env(p, ports), "st2": os.path.join(p.venv, "bin", "st2"),
        "python": p.python, "passwords": p.passwords, "users": list(USERS),
        "packs_dir": os.path.join(BASE, "packs"), "configs_dir": os.path.join(BASE, "configs"),
        "api_url": "http://127.0.0.1:%d/v1" % ports.api,
        "auth_url": "http://127.0.0.1:%d" % ports.auth,
        "stream_url": "http://127.0.0.1:%d/v1" % ports.stream,
        "logs": p.logs, "database": mongo_url() or "mongowire:%d" % ports.mongo,
        "rabbitmq_port": ports.rabbit, "redis_port": ports.redis,
        "last_up_timings": timings,
    }


def stop_procs(p: Paths, procs: Sequence[Proc], clock: Optional[Clock] = None) -> Dict[str, float]:
    return stop_recorded(procs, STOP_TIERS, STOP_GRACE, matcher(p),
                         log=clock.log if clock else None)


def up(p: Optional[Paths] = None) -> Paths:
    p = p or paths()
    ports = Ports.shifted(port_offset())
    clock = Clock()
    timings: Dict[str, float] = {}
    procs = read_pids(p)
    if procs:       # checked before install: the virtualenv is never rebuilt under live services
        rep = status(p)
        if rep["ok"]:
            clock.log("already up (%s; source %s)" % (p.root, p.env_sh))
            return p
        clock.log("existing sandbox not usable (%s): stopping it" % rep["reason"])
        stop_procs(p, procs, clock)
        os.replace(p.pids, p.pids + ".stopped")
    install(p, clock)
    timings["install"] = round(clock.elapsed(), 1)
    busy = [port for port in (ports.auth, ports.api, ports.stream, ports.redis, ports.rabbit)
            + (() if mongo_url() else (ports.mongo,)) if port_open(port)]
    if busy:
        raise SandboxError("ports %s on 127.0.0.1 are in use by processes this sandbox did not "
                           "record" % " ".join(map(str, busy)))
    claim_state_dir(p.root, p.marker, p.pids, "st2_sandbox.py")
    pw = load_passwords(p, create=True)
    with stopped_on_failure(clock, "up failed: stopping what it started (logs in %s)" % p.logs,
                            lambda: stop_procs(p, read_pids(p)), p.pids):
        prepare_base(p)
        write_config(p, ports, pw)
        start_backing(p, ports, clock)
        timings["backing"] = round(clock.elapsed(), 1)
        register_content(p, clock)
        timings["registered"] = round(clock.elapsed(), 1)
        start_services(p)
        wait_for(lambda: api_health(p, ports, pw), START_TIMEOUT, "StackStorm API", interval=1)
        dead = [x.name for x in read_pids(p) if not is_alive(x, matcher(p))]
        if dead:
            raise SandboxError("died while starting: %s (logs in %s)" % (" ".join(dead), p.logs))
        timings["healthy"] = round(clock.elapsed(), 1)
        write_file(p.facts, json.dumps(facts(p, ports, timings), indent=2) + "\n")
    clock.log("up: done (facts %s; source %s)" % (p.facts, p.env_sh))
    return p


def down(p: Optional[Paths] = None, wipe: bool = False) -> List[Proc]:
    p = p or paths()
    procs = read_pids(p)
    stop_listed(procs, p.pids, lambda: stop_procs(p, procs, Clock()))
    if wipe:
        if os.path.exists(p.base_marker):
            shutil.rmtree(BASE)
            print("wiped %s" % BASE)
        wipe_state_dir(p.root, p.marker, "a StackStorm sandbox")
        print("wiped %s" % p.root)
    return procs


def config_path(p: Optional[Paths] = None) -> Optional[str]:
    p = p or paths()
    if all_alive(read_pids(p), matcher(p)) and os.path.isfile(p.facts):
        return p.facts
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser, _ = cli_parser(
        "A real StackStorm %s for ceph_migrate, from source, on loopback. State dir: "
        "$CEPH_MIGRATE_ST2_DIR; venv: $CEPH_MIGRATE_ST2_VENV." % ST2_VERSION,
        install="apt packages, the st2 source and its virtualenv, if missing",
        up="install, then start every StackStorm service (idempotent)",
        down="stop the recorded processes by PID",
        config="print the path of the facts file (st2.json)",
        down_flags={"--wipe": "also delete the state dir and the /opt/stackstorm it made"})
    args = parser.parse_args(argv)
    p = paths()
    return run_command(args.cmd, p.root, {
        "install": lambda: install(p),
        "up": lambda: up(p),
        "down": lambda: down(p, wipe=args.wipe),
        "status": lambda: print_status(status(p), args.json, format_status),
        "config": lambda: print_config(config_path(p), "StackStorm sandbox in %s is not up"
                                       % p.root),
    })


if __name__ == "__main__":
    sys.exit(main())
