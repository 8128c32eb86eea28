"""Neutron: the API's configs (ML2 with the sandbox's agentless mechanism driver, the router
service plugin) and its database, made from the models because Neutron's migrations ALTER
constraints, which SQLite cannot."""
from __future__ import annotations

import os
import sys
import uuid
from typing import Dict

from openstack_clouds.layout import (
    authtoken, CLOUD_BY_NAME, CloudSpec, ini, Paths, paths, PUBLIC_NETWORK, service_auth,
    sqlite_url, sqlite_wal)
from openstack_clouds.broker import transport_url
from openstack_clouds.processes import self_in_venv, venv_step

ML2_DRIVER = "ceph_migrate_sandbox"   # alias of sandbox/ml2_noagent.py's driver (venv.py)
PHYSNET = "physnet1"                  # tenant networks: VLANs 100-199 on it


def neutron_confs(p: Paths, spec: CloudSpec, pw: Dict[str, str]) -> Dict[str, str]:
    d = p.neutron_dir(spec.name)
    neutron = ini([
        ("DEFAULT", [
            ("state_path", d), ("use_stderr", "false"), ("core_plugin", "ml2"),
            ("service_plugins", "router"), ("auth_strategy", "keystone"),
            ("transport_url", transport_url(spec)),
            ("api_paste_config", os.path.join(d, "api-paste.ini")),
            ("allow_overlapping_ips", "true"), ("dhcp_agent_notification", "false"),
            ("notify_nova_on_port_status_changes", "true"),
            ("notify_nova_on_port_data_changes", "true"),
        ]),
        ("database", [("connection", sqlite_url(p.db(spec.name, "neutron")))]),
        ("keystone_authtoken", authtoken(spec, "neutron", pw["neutron"])),
        ("nova", service_auth(spec, "nova", pw["nova"])),
        ("quotas", [("quota_%s" % k, -1) for k in (
            "network", "subnet", "port", "router", "floatingip", "security_group",
            "security_group_rule")]),
        ("oslo_concurrency", [("lock_path", os.path.join(d, "lock"))]),
        ("oslo_messaging_notifications", [("driver", "messagingv2")]),
    ])
    ml2 = ini([
        ("ml2", [("type_drivers", "local,flat,vlan,geneve"), ("tenant_network_types", "vlan"),
                 ("mechanism_drivers", ML2_DRIVER), ("extension_drivers", "port_security")]),
        ("ml2_type_flat", [("flat_networks", PUBLIC_NETWORK)]),
        ("ml2_type_vlan", [("network_vlan_ranges", "%s:100:199" % PHYSNET)]),
        ("ml2_type_geneve", [("vni_ranges", "1:1000")]),
        ("securitygroup", [("enable_security_group", "true"), ("firewall_driver", "noop")]),
    ])
    return dict(zip(p.neutron_confs(spec.name), (neutron, ml2)))


def init_neutron(p: Paths, spec: CloudSpec) -> None:
    venv_step(p, spec, self_in_venv(p, "_neutron-init", spec), "neutron-init.out",
              "neutron db", 300, CEPH_MIGRATE_OPENSTACK_DIR=p.root)
    sqlite_wal(p.db(spec.name, "neutron"))


# 2023.2/expand/c33da356b165 inserts these templates: without them every security group,
# `default` included, has no rules at all (a real cloud: 2 egress rules, 4 in `default`)
_EGRESS = "Legacy default SG rule for egress traffic"
_INGRESS = "Legacy default SG rule for ingress traffic"
DEFAULT_RULE_TEMPLATES = (
    dict(direction="egress", ethertype="IPv4", used_in_default_sg=True,
         used_in_non_default_sg=True, description=_EGRESS),
    dict(direction="egress", ethertype="IPv6", used_in_default_sg=True,
         used_in_non_default_sg=True, description=_EGRESS),
    dict(direction="ingress", ethertype="IPv4", remote_group_id="PARENT",
         used_in_default_sg=True, used_in_non_default_sg=False, description=_INGRESS),
    dict(direction="ingress", ethertype="IPv6", remote_group_id="PARENT",
         used_in_default_sg=True, used_in_non_default_sg=False, description=_INGRESS),
)


def neutron_init_main(cloud: str) -> int:
    """(venv) The schema from Neutron's models at head, the default security group rule
    templates its data migration would insert, then `stamp heads`."""
    import sqlalchemy as sa  # venv only
    from neutron.db.migration.models import head
    from neutron.db.migration import cli

    p = paths()
    spec = CLOUD_BY_NAME[cloud]
    engine = sa.create_engine("sqlite:///%s" % p.db(spec.name, "neutron"))
    metadata = head.get_metadata()
    metadata.create_all(engine)
    std = metadata.tables["standardattributes"]
    rules = metadata.tables["securitygroupdefaultrules"]
    with engine.begin() as conn:
        if not conn.execute(sa.select(sa.func.count()).select_from(rules)).scalar():
            for template in DEFAULT_RULE_TEMPLATES:
                attrs = dict(template)
                sid = conn.execute(sa.insert(std).values(
                    description=attrs.pop("description"), resource_type=rules.name,
                    revision_number=0)).inserted_primary_key[0]
                conn.execute(sa.insert(rules).values(id=str(uuid.uuid4()),
                                                     standard_attr_id=sid, **attrs))
    engine.dispose()
    argv = ["neutron-db-manage"]
    for conf in p.neutron_confs(spec.name):
        argv += ["--config-file", conf]
    sys.argv = argv + ["stamp", "heads"]
    return cli.main() or 0
