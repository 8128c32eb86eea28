"""What the clouds run on: Debian packages and the OpenStack virtualenv."""
from __future__ import annotations

import os
from typing import Optional, Sequence

from sandbox_common import apt_get_install, Clock, run, SandboxError, write_file
from openstack_clouds.layout import Paths, paths, SANDBOX_DIR
from openstack_clouds.broker import broker_answers

VENV_STAMP = ".ceph_migrate_openstack.stamp"
SYSTEM_PYTHON = "/usr/bin/python3.11"   # Debian's python3-rbd/python3-rados are built for it
# Top-level series pinned to what this sandbox was verified with (Keystone 30, Glance 33,
# Cinder 29, Nova 34, Neutron 29, Placement 16: one release series); --ignore-installed so that
# only rados/rbd come from Debian.
PIP_PACKAGES = ("keystone==30.*", "glance==33.*", "cinder==29.*", "nova==34.*", "neutron==29.*",
                "openstack-placement==16.*", "openstacksdk==4.*", "uwsgi", "pika")
VENV_IMPORTS = ("import rados, rbd, keystone, glance, glance_store, cinder, nova, neutron, "
                "placement, openstack, pika")
# sandbox/<file> -> module in the venv's site-packages (imported by name from there)
VENV_MODULES = (("sqlite_immediate.py", "ceph_migrate_sqlite_immediate.py"),
                # nova-compute loads its driver from nova.virt only
                ("nova_rbd_driver.py", "nova/virt/ceph_migrate_rbd.py"),
                ("ml2_noagent.py", "ceph_migrate_ml2_noagent.py"))
# ML2 loads mechanism drivers by entry point only: a bare dist-info declares ours
ML2_DIST_INFO = "ceph_migrate_ml2_noagent-1.0.dist-info"
ML2_ENTRY_POINTS = ("[neutron.ml2.mechanism_drivers]\n"
                    "ceph_migrate_sandbox = ceph_migrate_ml2_noagent:NoAgentMechanismDriver\n")
APT_PACKAGES = ("python3-rbd", "python3-rados", "python3-venv",
                # qemu-img: Cinder's RBD driver creates LUKS (encrypted) volumes with it
                "qemu-utils",
                # PyPI has no uWSGI wheel: pip compiles it against Debian's python3.11
                "gcc", "libc6-dev", "python3.11-dev")


def dpkg_installed(package: str) -> bool:
    res = run(["dpkg-query", "-W", "-f=${Status}", package], check=False)
    return res.returncode == 0 and res.stdout.strip().endswith(" installed")


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
                                               "keystone-manage", "nova-compute",
                                               "placement-manage", "python"))


def ensure_venv(p: Paths, clock: Clock) -> None:
    """<repo>/.venv-openstack from Debian's python3.11 with system site packages (for rados and
    rbd only: --ignore-installed keeps Debian's requests/WebOb/cryptography out)."""
    if venv_ready(p):
        install_modules(p)
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
    install_modules(p)
    write_file(os.path.join(p.venv, VENV_STAMP), " ".join(PIP_PACKAGES) + "\n")
    clock.log("virtualenv ready")


def install_modules(p: Paths) -> None:
    """The sandbox's own modules into the venv (rewritten when they changed): the SQLite lock
    fix, imported at every interpreter start by a .pth file, so that one cloud's writers queue
    instead of failing with "database is locked"; Nova's fake driver with RBD disks; the
    agentless ML2 mechanism driver with its entry point."""
    site = run([p.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
               timeout=60).stdout.strip()
    wanted = {os.path.join(site, ML2_DIST_INFO, "METADATA"):
              "Metadata-Version: 2.1\nName: ceph-migrate-ml2-noagent\nVersion: 1.0\n",
              os.path.join(site, ML2_DIST_INFO, "entry_points.txt"): ML2_ENTRY_POINTS,
              os.path.join(site, "ceph_migrate_sqlite_immediate.pth"):
              "import ceph_migrate_sqlite_immediate\n"}
    for source, module in VENV_MODULES:
        with open(os.path.join(SANDBOX_DIR, source)) as handle:
            wanted[os.path.join(site, module)] = handle.read()
    for target, text in wanted.items():
        if not os.path.exists(target) or open(target).read() != text:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            write_file(target, text)


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
