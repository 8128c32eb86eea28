"""Keystone: its config, its one-off initialisation (in the venv) and token logins."""
from __future__ import annotations

import grp
import os
import pwd
from typing import Any, Dict, Optional, Tuple

from sandbox_common import http_call, wait_for
from openstack_clouds.layout import (
    CLOUD_BY_NAME, CloudSpec, ini, Paths, paths, sqlite_url, sqlite_wal, START_TIMEOUT)
from openstack_clouds.processes import self_in_venv, venv_step


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


def init_keystone(p: Paths, spec: CloudSpec, pw: Dict[str, str]) -> None:
    """db_sync, fernet/credential keys and bootstrap in one venv interpreter (this script's
    _keystone-init), saving three interpreter start-ups."""
    venv_step(p, spec, self_in_venv(p, "_keystone-init", spec), "keystone-init.out",
              "keystone init", 300, CEPH_MIGRATE_OPENSTACK_DIR=p.root,
              _CM_ADMIN_PASSWORD=pw["admin"])
    sqlite_wal(p.db(spec.name, "keystone"))


def wait_keystone(spec: CloudSpec) -> None:
    def check() -> Tuple[bool, str]:
        status, _, data = http_call("GET", spec.auth_url, timeout=5)
        return status == 200, "GET /v3: %s" % status
    wait_for(check, START_TIMEOUT, "%s keystone" % spec.name, interval=0.3)


def keystone_init_main(cloud: str) -> int:
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
