"""A stand-in for OS Migrate's export (an Ansible collection, not installable here): resource
files written from a real cloud in OS Migrate's own layout, `os_migrate_version` and
`resources: [{type, params, _info}]`, with the params, `_info` and name references its
serializers use for each type (read from os-migrate/os-migrate, plugins/module_utils)."""
import yaml


def _ref(name, project_name="tenant", domain_name="Default"):
    return {"name": name, "project_name": project_name, "domain_name": domain_name}


def write(conn, project_id, directory):
    """Files for PROJECT_ID's project, networks, subnets, routers and their interfaces,
    security groups and rules; returns their paths."""
    net, ids = conn.network, conn.identity
    project = ids.get_project(project_id)
    files = {"projects.yml": [{
        "type": "openstack.identity.Project",
        "params": {"name": project.name, "description": project.description,
                   "is_domain": False, "is_enabled": project.is_enabled,
                   "domain_ref": {"name": "Default"}, "parent_ref": None},
        "_info": {"id": project.id, "domain_id": project.domain_id,
                  "parent_id": project.parent_id}}]}
    files["networks.yml"] = [{
        "type": "openstack.network.Network",
        "params": {k: getattr(n, k) for k in (
            "availability_zone_hints", "description", "dns_domain", "is_admin_state_up",
            "is_default", "is_port_security_enabled", "is_router_external", "is_shared",
            "is_vlan_transparent", "mtu", "name", "provider_network_type",
            "provider_physical_network", "provider_segmentation_id", "segments", "tags")}
        | {"qos_policy_ref": None},
        "_info": {"id": n.id, "project_id": n.project_id, "status": n.status,
                  "subnet_ids": sorted(n.subnet_ids)}}
        for n in net.networks(project_id=project_id)]
    names = {n.id: n.name for n in net.networks()}
    subnets = list(net.subnets(project_id=project_id))
    files["subnets.yml"] = [{
        "type": "openstack.subnet.Subnet",
        "params": {k: getattr(s, k) for k in (
            "allocation_pools", "cidr", "description", "dns_nameservers", "gateway_ip",
            "host_routes", "ip_version", "ipv6_address_mode", "ipv6_ra_mode", "is_dhcp_enabled",
            "name", "service_types", "tags", "use_default_subnet_pool")}
        | {"network_ref": _ref(names[s.network_id]), "segment_ref": None,
           "subnet_pool_ref": None},
        "_info": {"id": s.id, "network_id": s.network_id, "project_id": s.project_id,
                  "prefix_length": None}} for s in subnets]
    subnet_names = {s.id: s.name for s in subnets}
    routers = list(net.routers(project_id=project_id))
    files["routers.yml"] = [{
        "type": "openstack.network.Router",
        "params": {k: getattr(r, k) for k in ("availability_zone_hints", "description",
                                              "is_admin_state_up", "is_distributed", "is_ha",
                                              "name", "tags")}
        | {"external_gateway_refinfo": None, "flavor_ref": None},
        "_info": {"id": r.id, "project_id": r.project_id, "routes": r.routes,
                  "external_gateway_info": r.external_gateway_info, "status": r.status}}
        for r in routers]
    files["router_interfaces.yml"] = [{
        "type": "openstack.network.RouterInterface",
        "params": {"device_owner": p.device_owner, "device_ref": _ref(r.name),
                   "network_ref": _ref(names[p.network_id]),
                   "fixed_ips_refs": [{"ip_address": ip["ip_address"],
                                       "subnet_ref": _ref(subnet_names[ip["subnet_id"]])}
                                      for ip in p.fixed_ips]},
        "_info": {"id": p.id}}
        for r in routers for p in net.ports(device_id=r.id)
        if p.device_owner == "network:router_interface"]
    groups = list(net.security_groups(project_id=project_id))
    group_names = {g.id: g.name for g in groups}
    files["security_groups.yml"] = [{
        "type": "openstack.network.SecurityGroup",
        "params": {"name": g.name, "description": g.description},
        "_info": {"id": g.id, "project_id": g.project_id}} for g in groups]
    files["security_group_rules.yml"] = [{
        "type": "openstack.network.SecurityGroupRule",
        "params": {k: getattr(rule, k) for k in (
            "description", "direction", "ether_type", "port_range_max", "port_range_min",
            "protocol", "remote_ip_prefix")}
        | {"security_group_ref": _ref(group_names[rule.security_group_id]),
           "remote_group_ref": _ref(group_names[rule.remote_group_id])
           if rule.remote_group_id else None},
        "_info": {"id": rule.id, "security_group_id": rule.security_group_id,
                  "remote_group_id": rule.remote_group_id, "project_id": rule.project_id}}
        for g in groups for rule in net.security_group_rules(security_group_id=g.id)]
    paths = []
    for name, resources in files.items():
        path = "%s/%s" % (directory, name)
        with open(path, "w") as handle:
            yaml.safe_dump({"os_migrate_version": "1.0.0", "resources": resources}, handle,
                           default_flow_style=False)
        paths.append(path)
    return paths
