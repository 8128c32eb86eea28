"""Cinder: the config of api, scheduler and volume, on the real RBD driver, and the volume types."""
from __future__ import annotations

import os
from typing import Dict

from openstack_clouds.layout import authtoken, CloudSpec, ini, Paths, service_auth, sqlite_url
from openstack_clouds.broker import transport_url

DEFAULT_TYPE = "ceph"
ENCRYPTED_TYPE = "encrypted"
IN_PLACE_TYPE = "ceph-mirrored"     # destination: the backend on the mirrored pool
ENCRYPTION = {"provider": "luks", "cipher": "aes-xts-plain64", "key_size": 256,
              "control_location": "front-end"}


def cinder_conf(p: Paths, spec: CloudSpec, pw: Dict[str, str]) -> str:
    d = p.cloud(spec.name, "cinder")
    etc = os.path.join(p.venv, "etc", "cinder")
    service_user = ([("send_service_user_token", "true")]
                    + service_auth(spec, "cinder", pw["cinder"]))
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
            ("enabled_backends", ",".join(b for b, _ in spec.backends)),
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
        # volume extend and attach events go to Nova as its service user
        ("nova", service_auth(spec, "nova", pw["nova"])),
        # encrypted volume types without Barbican: one fixed key per cloud (test only)
        ("key_manager", [("backend", "cinder.keymgr.conf_key_mgr.ConfKeyManager"),
                         ("fixed_key", pw["_fixed_key"])]),
        ("oslo_concurrency", [("lock_path", os.path.join(d, "lock"))]),
        ("oslo_messaging_notifications", [("driver", "messagingv2")]),
        ("coordination", [("backend_url", "file://%s" % os.path.join(d, "lock"))]),
    ] + [
        (backend, [
            ("volume_driver", "cinder.volume.drivers.rbd.RBDDriver"),
            ("volume_backend_name", backend),
            ("rbd_pool", pool), ("rbd_user", "cinder"),
            ("rbd_ceph_conf", p.ceph_conf(spec)), ("rbd_cluster_name", spec.ceph_cluster),
            ("rados_connect_timeout", 10), ("report_discard_supported", "true"),
        ]) for backend, pool in spec.backends
    ])
