"""Where everything of the OpenStack sandbox lives: the two clouds' ports, pools and users,
the state dir's files, and the small file formats the configs are written in."""
from __future__ import annotations

import json
import os
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Sequence, Tuple

from sandbox_common import read_json, StateDir, write_file

SANDBOX_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the command line, also run by the venv's python for the steps that import OpenStack
CLI = os.path.join(SANDBOX_DIR, "openstack_sandbox.py")
REPO = os.path.dirname(SANDBOX_DIR)
MARKER = ".ceph_migrate_openstack"
START_TIMEOUT = 120.0       # per cloud: keystone, setup, then health
BACKEND_TIMEOUT = 150.0     # scheduler learns the pool at latest one periodic_interval later
USERS = {  # user -> (project, roles)
    "admin": ("admin", ("admin", "service")),
    "glance": ("service", ("admin", "service")),
    "cinder": ("service", ("admin", "service")),
    "nova": ("service", ("admin", "service")),
    "neutron": ("service", ("admin", "service")),
    "placement": ("service", ("admin", "service")),
    "tenant-user": ("tenant", ("member",)),
    "tenant-admin": ("tenant", ("member",)),
}
CLOUDS_YAML_USERS = {"admin": "admin", "tenant": "tenant-user", "tenant-admin": "tenant-admin"}


VMS_POOL = "vms"             # Nova's server disks, as libvirt's RBD image backend names them
PUBLIC_NETWORK = "public"    # each cloud's external network: flat, physnet "public"


@dataclass(frozen=True)
class CloudSpec:
    """One cloud: ports, Ceph cluster, Cinder backend and pools, compute host, external network,
    RabbitMQ vhost."""
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
    nova_port: int
    placement_port: int
    neutron_port: int
    compute_host: str
    public_cidr: str
    # a second backend on the mirrored pool (destination only): `placement: promote` manages
    # the promoted replica where it is, with a volume type of its own
    in_place_pool: str = ""

    @property
    def backends(self) -> Tuple[Tuple[str, str], ...]:
        """(backend, rbd pool) of every Cinder backend; backend name == pool name."""
        return ((self.cinder_backend, self.cinder_pool),) + (
            ((self.in_place_pool, self.in_place_pool),) if self.in_place_pool else ())

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
    def manage_hosts(self) -> List[str]:
        return ["%s@%s#%s" % (self.cinder_host, b, b) for b, _ in self.backends]

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

    @property
    def nova_url(self) -> str:
        return "http://127.0.0.1:%d/v2.1" % self.nova_port

    @property
    def placement_url(self) -> str:
        return "http://127.0.0.1:%d" % self.placement_port

    @property
    def neutron_url(self) -> str:
        return "http://127.0.0.1:%d" % self.neutron_port

    def ports(self) -> Tuple[int, ...]:
        return (self.keystone_port, self.glance_port, self.cinder_port, self.nova_port,
                self.placement_port, self.neutron_port)


CLOUDS = (
    CloudSpec("pa1", "source", "ceph", 5000, 9292, 8776,
              "cinder-pa1-cl1", "oscinder", "oscinder", "osglance",
              8774, 8778, 9696, "compute-pa1", "198.51.100.0/24"),
    CloudSpec("ct1", "destination", "cephpa1", 5010, 9302, 8786,
              "cinder-ct1-cl1", "cinder-ceph-pa1-cl1", "cinder-ceph-pa1-cl1", "glance-ct1-cl1",
              8784, 8788, 9706, "compute-ct1", "203.0.113.0/24", in_place_pool="oscinder"),
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

    def nova_dir(self, cloud: str) -> str:
        return self.cloud(cloud, "nova")

    def nova_conf(self, cloud: str) -> str:
        return self.cloud(cloud, "nova", "nova.conf")

    def placement_dir(self, cloud: str) -> str:
        return self.cloud(cloud, "placement")

    def neutron_dir(self, cloud: str) -> str:
        return self.cloud(cloud, "neutron")

    def neutron_confs(self, cloud: str) -> List[str]:
        return [self.cloud(cloud, "neutron", name) for name in ("neutron.conf", "ml2_conf.ini")]

    def db(self, cloud: str, project: str) -> str:
        """PROJECT's SQLite file (Nova's: nova_api, nova_cell0 and nova_cell1 in nova/)."""
        folder = "nova" if project.startswith("nova_") else project
        return self.cloud(cloud, folder, "%s.db" % project)


def paths() -> Paths:
    """State dir from $CEPH_MIGRATE_OPENSTACK_DIR, venv from $CEPH_MIGRATE_OPENSTACK_VENV."""
    root = os.environ.get("CEPH_MIGRATE_OPENSTACK_DIR") or "/tmp/ceph_migrate_openstack"
    venv = os.environ.get("CEPH_MIGRATE_OPENSTACK_VENV") or os.path.join(REPO, ".venv-openstack")
    return Paths(os.path.abspath(root), os.path.abspath(venv))


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


def service_auth(spec: CloudSpec, user: str, password: str) -> List[Tuple[str, Any]]:
    """keystoneauth password options of a service user (service-to-service calls)."""
    return [("auth_type", "password"), ("auth_url", spec.keystone_url), ("username", user),
            ("password", password), ("user_domain_id", "default"), ("project_name", "service"),
            ("project_domain_id", "default"), ("region_name", spec.region)]


def authtoken(spec: CloudSpec, user: str, password: str) -> List[Tuple[str, Any]]:
    return [("www_authenticate_uri", spec.keystone_url), ("auth_url", spec.keystone_url),
            ("auth_type", "password"), ("project_domain_id", "default"),
            ("user_domain_id", "default"), ("project_name", "service"),
            ("username", user), ("password", password), ("region_name", spec.region),
            ("service_token_roles_required", "true")]


def sqlite_url(path: str) -> str:
    """SQLite with a busy timeout: three services write one file."""
    return "sqlite:///%s?timeout=30" % path
