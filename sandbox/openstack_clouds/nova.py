"""Nova and Placement: their configs and Nova's one-off database and cell set-up. nova-compute
runs the sandbox's fake driver with RBD disks (sandbox/nova_rbd_driver.py): servers are not real
guests, but their disks are real RBD images in the `vms` pool, made as libvirt's RBD backend
makes them."""
from __future__ import annotations

import os
from typing import Dict

from openstack_clouds.layout import (
    authtoken, CloudSpec, ini, Paths, service_auth, sqlite_url, sqlite_wal, VMS_POOL)
from openstack_clouds.broker import transport_url
from openstack_clouds.processes import venv_step

NOVA_DRIVER = "ceph_migrate_rbd.RbdFakeDriver"   # nova/virt/ceph_migrate_rbd.py (venv.py)
NOVA_DBS = ("nova_api", "nova_cell0", "nova_cell1")


def placement_conf(p: Paths, spec: CloudSpec, pw: Dict[str, str]) -> str:
    return ini([
        ("DEFAULT", [("log_file", os.path.join(p.log_dir(spec.name), "placement-api.log")),
                     ("use_stderr", "false")]),
        ("api", [("auth_strategy", "keystone")]),
        ("placement_database", [("connection", sqlite_url(p.db(spec.name, "placement")))]),
        ("keystone_authtoken", authtoken(spec, "placement", pw["placement"])),
    ])


def nova_conf(p: Paths, spec: CloudSpec, pw: Dict[str, str]) -> str:
    d = p.nova_dir(spec.name)
    return ini([
        ("DEFAULT", [
            ("host", spec.compute_host), ("my_ip", "127.0.0.1"), ("state_path", d),
            ("instances_path", os.path.join(d, "instances")), ("use_stderr", "false"),
            ("transport_url", transport_url(spec)),
            ("compute_driver", NOVA_DRIVER),
            # the fake driver keeps its guests in memory: after a nova-compute restart it
            # reports them gone, and the power-state sync would stop them
            ("sync_power_state_interval", -1),
            ("enabled_apis", "osapi_compute"),
            # no L2 agent: never wait for Neutron's network-vif-plugged event
            ("vif_plugging_is_fatal", "false"), ("vif_plugging_timeout", 0),
            ("update_resources_interval", 30),
            # a heartbeat sent while the broker restarts (the sensor test restarts it) waits
            # out rpc_response_timeout (60 s) before the next: at the default 60 s the one
            # compute host counted as down meanwhile ("No valid host was found")
            ("service_down_time", 180),
            ("graceful_shutdown_timeout", 2),
        ]),
        ("api", [("auth_strategy", "keystone")]),
        ("wsgi", [("api_paste_config", os.path.join(d, "api-paste.ini"))]),
        ("api_database", [("connection", sqlite_url(p.db(spec.name, "nova_api")))]),
        ("database", [("connection", sqlite_url(p.db(spec.name, "nova_cell1")))]),
        ("keystone_authtoken", authtoken(spec, "nova", pw["nova"])),
        ("placement", service_auth(spec, "placement", pw["placement"])
         + [("valid_interfaces", "public")]),
        ("neutron", service_auth(spec, "neutron", pw["neutron"])
         + [("valid_interfaces", "public")]),
        ("cinder", service_auth(spec, "cinder", pw["cinder"])
         + [("os_region_name", spec.region)]),
        ("glance", [("valid_interfaces", "public")]),
        ("service_user", [("send_service_user_token", "true")]
         + service_auth(spec, "nova", pw["nova"])),
        # read by the sandbox's driver, as libvirt's RBD image backend reads them
        ("libvirt", [("images_type", "rbd"), ("images_rbd_pool", VMS_POOL),
                     ("images_rbd_ceph_conf", p.ceph_conf(spec)), ("rbd_user", "nova")]),
        ("scheduler", [("workers", 1), ("discover_hosts_in_cells_interval", 30)]),
        ("conductor", [("workers", 1)]),
        ("quota", [("instances", -1), ("cores", -1), ("ram", -1)]),
        ("vnc", [("enabled", "false")]),
        ("oslo_concurrency", [("lock_path", os.path.join(d, "lock"))]),
        ("notifications", [("notify_on_state_change", "vm_and_task_state")]),
        ("oslo_messaging_notifications", [("driver", "messagingv2")]),
    ])


def init_nova(p: Paths, spec: CloudSpec) -> None:
    """api_db sync, cell0, cell1, db sync (nova-manage, in this order)."""
    manage = [p.bin("nova-manage"), "--config-file", p.nova_conf(spec.name)]
    cell0 = sqlite_url(p.db(spec.name, "nova_cell0"))
    for i, step in enumerate((["api_db", "sync"],
                              ["cell_v2", "map_cell0", "--database_connection", cell0],
                              ["cell_v2", "create_cell", "--name", "cell1"],
                              ["db", "sync"])):
        venv_step(p, spec, manage + step, "nova-init-%d.out" % i,
                  "nova-manage %s" % " ".join(step[:2]), 300)
    for db in NOVA_DBS:
        sqlite_wal(p.db(spec.name, db))


def discover_hosts(p: Paths, spec: CloudSpec) -> None:
    """Map the compute host into cell1 once it has registered."""
    venv_step(p, spec, [p.bin("nova-manage"), "--config-file", p.nova_conf(spec.name),
                        "cell_v2", "discover_hosts"], "nova-discover.out",
              "nova-manage cell_v2 discover_hosts", 120)
