"""The ceph_migrate pack config for the sandboxes, in the two forms the project uses.

* ``local_config()``: plain values (keyring files, clouds.yaml entries, broker passwords) for
  the local runner, the tests and the benchmarks.
* ``st2_config(approvals)``: what an operator writes for StackStorm from
  ``ceph_migrate.yaml.example``: the same clusters and clouds, but every secret read from an
  encrypted datastore key named as in the example (``{{ st2kv.system.<name> }}``), returned
  with the values to store under those names.

Reads only the files the sandboxes wrote; importable with nothing but PyYAML.
"""
import copy
import json
import os
import re
from typing import Any, Dict, Tuple

import yaml

# datastore key names: the ones ceph_migrate.yaml.example uses
CEPH_KEY = "ceph_migrate_cephpa1_key"
CLOUD_PASSWORD = "ceph_migrate_ct1_password"
BROKER_PASSWORDS = {"source": "ceph_migrate_pa1_rabbit_password",
                    "destination": "ceph_migrate_ct1_rabbit_password"}


def ceph_state_dir() -> str:
    return os.environ.get("CEPH_MIGRATE_SANDBOX_DIR", "/tmp/ceph_migrate_sandbox")


def openstack_state_dir() -> str:
    return os.environ.get("CEPH_MIGRATE_OPENSTACK_DIR", "/tmp/ceph_migrate_openstack")


def local_config() -> Dict[str, Any]:
    """The pack config for the Ceph sandbox and, when it runs, the OpenStack sandbox."""
    with open(os.path.join(ceph_state_dir(), "ceph_migrate.yaml")) as handle:
        config = yaml.safe_load(handle)
    facts_path = os.path.join(openstack_state_dir(), "openstack.json")
    if os.path.exists(facts_path):
        with open(facts_path) as handle:
            config = with_openstack(config, json.load(handle))
    return config


def with_openstack(config: Dict[str, Any], facts: Dict[str, Any]) -> Dict[str, Any]:
    """CONFIG (the Ceph sandbox's) with the clouds of FACTS (openstack.json) added."""
    config = dict(config, **openstack_config(facts))
    in_place = facts["clouds"]["ct1"]["cinder"].get("in_place")
    if in_place:    # placement promote: the volume type of the mirrored pool's backend
        config["copy"] = dict(config.get("copy") or {},
                              promote_volume_type=in_place["volume_type"])
    return config


def openstack_config(facts: Dict[str, Any]) -> Dict[str, Any]:
    """The pack config keys for the two sandbox clouds (openstack.json facts): API access and
    where each cloud's notifications arrive."""
    clouds_yaml = facts["clouds_yaml"]
    config: Dict[str, Any] = {
        "source_cloud": {"cloud": "pa1-admin", "clouds_yaml": clouds_yaml},
        "destination_cloud": {"cloud": "ct1-admin", "clouds_yaml": clouds_yaml},
        "destination_glance_store": facts["clouds"]["ct1"]["glance"]["store_id"]}
    for role, cloud in (("source", "pa1"), ("destination", "ct1")):
        rabbit = facts["clouds"][cloud]["rabbit"]
        config["%s_notifications" % role] = {
            "host": rabbit["host"], "port": rabbit["port"], "vhost": rabbit["vhost"],
            "username": rabbit["user"], "password": rabbit["password"],
            "exchanges": sorted(set(rabbit["exchanges"].values()))}
    return config


def keyring_key(path: str) -> str:
    """The cephx key in a keyring file ('key = AQ...==')."""
    with open(path) as handle:
        match = re.search(r"^\s*key\s*=\s*(\S+)\s*$", handle.read(), re.MULTILINE)
    if not match:
        raise ValueError("no key in %s" % path)
    return match.group(1)


def _ref(name: str) -> str:
    return "{{ st2kv.system.%s }}" % name


def st2_config(approvals: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """(pack config, datastore secrets) for StackStorm, shaped like the example config: the
    destination's cephx key, the destination cloud's password and both brokers' passwords
    come from encrypted datastore keys; APPROVALS names the StackStorm accounts per gate."""
    config = copy.deepcopy(local_config())
    secrets: Dict[str, str] = {}
    dest = config["destination_ceph"]
    secrets[CEPH_KEY] = keyring_key(dest.pop("keyring"))
    dest["key"] = _ref(CEPH_KEY)
    entry = config["destination_cloud"]
    with open(entry["clouds_yaml"]) as handle:
        cloud = yaml.safe_load(handle)["clouds"][entry["cloud"]]
    auth = cloud["auth"]
    secrets[CLOUD_PASSWORD] = auth["password"]
    config["destination_cloud"] = {
        "auth_url": auth["auth_url"], "username": auth["username"],
        "password": _ref(CLOUD_PASSWORD), "project_name": auth["project_name"],
        "user_domain_name": auth.get("user_domain_name", "Default"),
        "project_domain_name": auth.get("project_domain_name", "Default"),
        "region_name": cloud.get("region_name"), "interface": cloud.get("interface", "public")}
    for role, name in BROKER_PASSWORDS.items():
        section = config.get("%s_notifications" % role)
        if section:
            secrets[name] = section["password"]
            section["password"] = _ref(name)
    config["approvals"] = approvals
    return config, secrets
