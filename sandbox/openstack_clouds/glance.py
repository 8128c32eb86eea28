"""Glance: the API's config, on the rbd store of the cloud's Ceph cluster."""
from __future__ import annotations

import os
from typing import Dict

from openstack_clouds.layout import authtoken, CloudSpec, ini, Paths, sqlite_url
from openstack_clouds.broker import transport_url

GLANCE_STORE_ID = "ceph"


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
