#!/usr/bin/env python3
"""OpenStack sandbox for ceph_migrate: two small clouds on the Ceph sandbox's two clusters.

    pa1 (source)       keystone 5000, glance 9292, cinder 8776, nova 8774, placement 8778,
                       neutron 9696                             -> Ceph cluster `ceph`
    ct1 (destination)  keystone 5010, glance 9302, cinder 8786, nova 8784, placement 8788,
                       neutron 9706                             -> Ceph cluster `cephpa1`

Each cloud: Keystone, Glance (api), Cinder (api, scheduler, volume), Placement, Nova (api,
conductor, scheduler, compute) and Neutron (api) from a virtualenv, the APIs under uWSGI, all on
127.0.0.1 with SQLite databases in the state dir. Cinder uses the real RBD driver, Glance the
real rbd store, nova-compute a fake virt driver whose servers' disks are real RBD images in the
pool `vms` (sandbox/nova_rbd_driver.py), Neutron ML2 with an agentless mechanism driver
(sandbox/ml2_noagent.py: ports bind, no packet moves), the router service plugin and an external
flat network `public`; as the Ceph users client.cinder, client.glance and client.nova (created
on both clusters with the admin keyring). Notifications (messagingv2) go to RabbitMQ,
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
The work is done by the package openstack_clouds/ beside this file, a module per service.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:   # openstack_clouds/, ceph_sandbox.py and sandbox_common.py sit here
    sys.path.insert(0, _HERE)
from sandbox_common import cli_parser, print_config, print_status, run_command  # noqa: E402
from openstack_clouds.broker import restart_broker  # noqa: E402
from openstack_clouds.cloud import setup_cloud_main  # noqa: E402
from openstack_clouds.keystone import keystone_init_main  # noqa: E402
from openstack_clouds.layout import CLOUD_BY_NAME, paths  # noqa: E402
from openstack_clouds.neutron import neutron_init_main  # noqa: E402
from openstack_clouds.lifecycle import config_path, down, format_status, status, up  # noqa: E402
from openstack_clouds.venv import install  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser, sub = cli_parser(
        "Two OpenStack clouds (pa1 on Ceph 'ceph', ct1 on Ceph 'cephpa1') for ceph_migrate. "
        "State dir: $CEPH_MIGRATE_OPENSTACK_DIR; venv: $CEPH_MIGRATE_OPENSTACK_VENV.",
        install="apt packages and the virtualenv, if missing",
        up="install, then start both clouds (idempotent)",
        down="stop the recorded processes by PID",
        config="print the path of the generated clouds.yaml",
        down_flags={"--wipe": "also delete the state dir and vhosts"})
    # run by `up` with the venv's python
    for hidden in ("_keystone-init", "_neutron-init", "_setup-cloud"):
        h = sub.add_parser(hidden)
        h.add_argument("cloud", choices=sorted(CLOUD_BY_NAME))
    sub.add_parser("restart-broker", help="stop the sandbox's own RabbitMQ and start it again")
    args = parser.parse_args(argv)
    p = paths()
    return run_command(args.cmd, p.root, {
        "_keystone-init": lambda: keystone_init_main(args.cloud),
        "_neutron-init": lambda: neutron_init_main(args.cloud),
        "_setup-cloud": lambda: setup_cloud_main(args.cloud),
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
