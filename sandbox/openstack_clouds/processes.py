"""The sandbox's processes: started in their own sessions, recorded in <state>/pids, stopped by
PID only (checked against their command lines), never by name."""
from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from sandbox_common import (
    Clock, is_alive, Matcher, read_recorded, Recorded, run_logged, start_recorded, stop_recorded,
    wipe_state_dir)
from rabbit_node import RabbitNode
from openstack_clouds.layout import CLI, CloudSpec, Paths

BROKER_CLOUD = "shared"   # CLOUD column of the own broker's lines in the pids file
UWSGI_SERVICES = ("keystone", "glance-api", "cinder-api", "placement-api", "nova-api",
                  "neutron-api")
NOVA_SERVICES = ("nova-conductor", "nova-scheduler", "nova-compute")
# Stop order: compute and volume first, broker last (services hang in reconnect loops without it).
STOP_TIERS = (("nova-compute", "cinder-volume"),
              ("nova-conductor", "nova-scheduler", "cinder-scheduler"),
              ("cinder-api", "glance-api", "nova-api", "neutron-api", "placement-api"),
              ("keystone",), ("rabbitmq",), ("epmd",))
STOP_GRACE = dict({name: 5.0 for tier in STOP_TIERS[:4] for name in tier},
                  rabbitmq=20.0, epmd=3.0)
# Nova, Neutron and Placement take the SQLite fix's oslo.db way (sandbox/sqlite_immediate.py)
SQLITE_WRITERS = frozenset(("placement-api", "nova-api", "neutron-api") + NOVA_SERVICES)


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
    if proc.name in UWSGI_SERVICES:
        return ("uwsgi",), p.uwsgi_ini(proc.cloud, proc.name)
    if proc.name in ("cinder-scheduler", "cinder-volume"):
        return (proc.name,), p.cinder_conf(proc.cloud)
    if proc.name in NOVA_SERVICES:
        return (proc.name,), p.nova_conf(proc.cloud)
    if proc.name == "rabbitmq":   # the sh script, and the Erlang VM it runs
        return RabbitNode.PROGRAMS, ""
    return (proc.name,), ""


def _runs_as(p: Paths, proc: Proc, argv: List[str]) -> bool:
    """ARGV is that of PROC (or of a fork of it), by expected_cmdline(). Nova's services retitle
    themselves ('nova-conductor: master process [<argv>]', one string): read as such."""
    programs, argument = expected_cmdline(p, proc)
    titled = " ".join(argv)
    if any(titled.startswith(program + ": ") for program in programs):
        return not argument or argument in titled
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
    return [p.python, CLI, command, spec.name]


def start_service(p: Paths, spec: CloudSpec, service: str) -> Proc:
    c = spec.name
    if service in UWSGI_SERVICES:
        argv = [p.bin("uwsgi"), "--ini", p.uwsgi_ini(c, service)]
    elif service in NOVA_SERVICES:
        argv = [p.bin(service), "--config-file", p.nova_conf(c),
                "--log-file", os.path.join(p.log_dir(c), "%s.log" % service)]
    else:
        argv = [p.bin(service), "--config-file", p.cinder_conf(c)]
    env = {"CEPH_MIGRATE_SQLITE_BEGIN": "writers"} if service in SQLITE_WRITERS else None
    return start_proc(p, c, service, argv, extra_env=env, cwd=p.cloud(c))
