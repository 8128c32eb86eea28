"""OS Migrate's exported resource files (its `resources: [{type, params, _info}]` YAML) read
as a tenant export, so that its users import what they already exported the pack's way:
identity by source id, not by name. Ids come from each resource's `_info`; where OS Migrate
refers by name only (a router interface's router and subnets, a keypair's or role's user), the
name must be unique among the files' resources, else the file is refused, not guessed.

Carried: the project, users, role assignments, keypairs, flavors, networks, subnets, routers
(with interfaces, gateway and routes), security groups and rules. Images are not: OS Migrate
exports their bytes, the pack carries images only by Ceph (export_tenant from the cloud)."""
from types import SimpleNamespace
from typing import Any, Dict, List, Mapping, Optional, Sequence

from . import neutron
from .errors import ConfigError
from .tenant import document, Resource

NETWORK = "openstack.network.Network"
SUBNET = "openstack.subnet.Subnet"
ROUTER = "openstack.network.Router"
INTERFACE = "openstack.network.RouterInterface"
GROUP = "openstack.network.SecurityGroup"
RULE = "openstack.network.SecurityGroupRule"
FLAVOR = "openstack.compute.Flavor"
KEYPAIR = "openstack.compute.Keypair"
PROJECT = "openstack.identity.Project"
USER = "openstack.user.User"
ROLE = "openstack.identity.UserProjectRoleAssignment"
NOT_CARRIED = ("openstack.image.Image", "openstack.compute.Server",
               "openstack.network.ServerPort", "openstack.network.ServerFloatingIP",
               "openstack.network.ServerVolume")


def read(texts: Sequence[str], project: Optional[str] = None) -> Dict[str, Any]:
    """The export document from OS Migrate files' TEXTS; PROJECT (a name or id) picks the
    project when the files hold more than one. Also says what was left out and why."""
    import yaml

    by_type: Dict[str, List[Mapping[str, Any]]] = {}
    for text in texts:
        loaded = yaml.safe_load(text)
        if not isinstance(loaded, Mapping) or not isinstance(loaded.get("resources"), list):
            raise ConfigError("not an OS Migrate resources file (no `resources` list)")
        for item in loaded["resources"]:
            if not isinstance(item, Mapping) or "type" not in item:
                raise ConfigError("an OS Migrate resource without a type: %r" % (item,))
            by_type.setdefault(str(item["type"]), []).append(item)
    owner = _project(by_type, project)
    skipped = sorted("%d %s" % (len(items), kind) for kind, items in by_type.items()
                     if kind in NOT_CARRIED)
    unknown = sorted(set(by_type) - set(READERS) - set(NOT_CARRIED) - {INTERFACE})
    if unknown:
        raise ConfigError("OS Migrate resource type(s) the pack does not read: %s"
                          % ", ".join(unknown))
    found: List[Resource] = []
    for kind, reader in READERS.items():
        for item in by_type.get(kind) or []:
            info = item.get("_info") or {}
            if kind != PROJECT and info.get("project_id") not in (None, owner["id"]):
                continue                  # another project's, in a shared file
            found.extend(reader(item, by_type, owner))
    return {"document": document(owner, found), "skipped": skipped}


def _project(by_type: Mapping[str, List[Mapping[str, Any]]],
             wanted: Optional[str]) -> Dict[str, Any]:
    projects = [(p.get("_info") or {}, p.get("params") or {}) for p in by_type.get(PROJECT) or []]
    if wanted:
        projects = [(i, p) for i, p in projects if wanted in (i.get("id"), p.get("name"))]
    if len(projects) == 1:
        info, params = projects[0]
        return {"id": info["id"], "name": params.get("name"),
                "domain": (params.get("domain_ref") or {}).get("name")}
    owners = {(item.get("_info") or {}).get("project_id") for items in by_type.values()
              for item in items} - {None}
    if not projects and len(owners) == 1 and wanted:
        return {"id": owners.pop(), "name": wanted, "domain": None}
    raise ConfigError("the files hold %d projects%s: name the source project (its OS Migrate "
                      "project file among them)" % (len(projects) or len(owners),
                                                    " named %s" % wanted if wanted else ""))


def _params(item: Mapping[str, Any], keys: Sequence[str]) -> Dict[str, Any]:
    params = item.get("params") or {}
    return {k: params.get(k) for k in keys}


def _id(item: Mapping[str, Any]) -> str:
    ident = (item.get("_info") or {}).get("id")
    if not ident:
        raise ConfigError("an OS Migrate %s without _info.id: re-export it with OS Migrate"
                          % item.get("type"))
    return str(ident)


def _named(by_type: Mapping[str, List[Mapping[str, Any]]], kind: str,
           ref: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The id of the one resource of KIND the name reference REF names; refused when the files
    hold several of that name (OS Migrate's references are by name)."""
    if not ref:
        return None
    ids = [_id(i) for i in by_type.get(kind) or [] if (i.get("params") or {}).get("name")
           == ref.get("name")]
    if len(ids) != 1:
        raise ConfigError("OS Migrate refers to %s %r by name, and the files hold %d of that "
                          "name: the pack cannot tell which" % (kind, ref.get("name"), len(ids)))
    return ids[0]


def _project_res(item: Mapping[str, Any], by_type: Any, owner: Mapping[str, Any]
                 ) -> List[Resource]:
    if _id(item) != owner["id"]:
        return []
    params = item.get("params") or {}
    return [Resource("project", owner["id"], {
        "name": params.get("name"), "description": params.get("description") or "",
        "enabled": bool(params.get("is_enabled", True)), "domain": owner.get("domain"),
        "tags": []})]


def _user(item: Mapping[str, Any], by_type: Any, owner: Any) -> List[Resource]:
    params = item.get("params") or {}
    return [Resource("user", _id(item), {
        "name": params.get("name"), "description": params.get("description") or "",
        "email": params.get("email"), "enabled": bool(params.get("is_enabled", True)),
        "domain": (params.get("domain_ref") or {}).get("name")})]


def _role(item: Mapping[str, Any], by_type: Any, owner: Any) -> List[Resource]:
    params, info = item.get("params") or {}, item.get("_info") or {}
    if info.get("project_id") not in (None, owner["id"]):
        return []
    user = info.get("user_id") or _named(by_type, USER, params.get("user_ref"))
    role = (params.get("role_ref") or {}).get("name")
    return [Resource("role_assignment", "user:%s:%s" % (user, role),
                     {"actor": "user", "user_id": user, "role": role},
                     refs={"user_id": "user"})]


def _keypair(item: Mapping[str, Any], by_type: Any, owner: Any) -> List[Resource]:
    params, info = item.get("params") or {}, item.get("_info") or {}
    user = info.get("user_id") or _named(by_type, USER, params.get("user_ref"))
    return [Resource("keypair", "%s:%s" % (user, params.get("name")),
                     dict(_params(item, ("name", "public_key", "type")), user_id=user),
                     {"fingerprint": info.get("fingerprint")}, refs={"user_id": "user"})]


def _flavor(item: Mapping[str, Any], by_type: Any, owner: Mapping[str, Any]) -> List[Resource]:
    params = _params(item, ("name", "vcpus", "ram", "disk", "ephemeral", "swap", "rxtx_factor",
                            "is_public", "description"))
    params["extra_specs"] = dict(sorted(((item.get("params") or {}).get("extra_specs")
                                         or {}).items()))
    # OS Migrate carries no access list: a private flavor is for the tenant it came with
    params["access"] = [] if params["is_public"] else [owner["id"]]
    return [Resource("flavor", _id(item), params,
                     {"is_disabled": (item.get("_info") or {}).get("is_disabled")})]


def _network(item: Mapping[str, Any], by_type: Any, owner: Any) -> List[Resource]:
    if (item.get("params") or {}).get("is_router_external"):
        return []                     # an operator's network: translated, never copied
    return [Resource("network", _id(item), dict(_params(item, neutron.NETWORK_PARAMS),
                                                tags=sorted(_tags(item))),
                     {"provider_segmentation_id":
                      (item.get("params") or {}).get("provider_segmentation_id")})]


def _subnet(item: Mapping[str, Any], by_type: Any, owner: Any) -> List[Resource]:
    params = dict(_params(item, neutron.SUBNET_PARAMS), tags=sorted(_tags(item)),
                  network_id=(item.get("_info") or {}).get("network_id")
                  or _named(by_type, NETWORK, (item.get("params") or {}).get("network_ref")))
    return [Resource("subnet", _id(item), params, refs={"network_id": "network"})]


def _router(item: Mapping[str, Any], by_type: Any, owner: Any) -> List[Resource]:
    info = item.get("_info") or {}
    ident = _id(item)
    params = dict(_params(item, neutron.ROUTER_PARAMS), tags=sorted(_tags(item)),
                  routes=neutron.plain(info.get("routes") or []))
    gateway = info.get("external_gateway_info") or {}
    if gateway.get("network_id"):
        params["external_gateway_info"] = {"network_id": gateway["network_id"],
                                           "enable_snat": gateway.get("enable_snat", True)}
    interfaces = []
    for port in by_type.get(INTERFACE) or []:
        port_params = port.get("params") or {}
        if _named(by_type, ROUTER, port_params.get("device_ref")) != ident:
            continue
        for fixed in port_params.get("fixed_ips_refs") or []:
            interfaces.append({"subnet_id": _named(by_type, SUBNET, fixed.get("subnet_ref")),
                               "ip_address": fixed.get("ip_address")})
    params["interfaces"] = neutron.plain(interfaces)
    return [Resource("router", ident, params, refs={"interfaces": "subnet"})]


def _group(item: Mapping[str, Any], by_type: Any, owner: Any) -> List[Resource]:
    params = dict(_params(item, ("name", "description")), stateful=True,
                  tags=sorted(_tags(item)))
    return [Resource("security_group", _id(item), params)]


def _rule(item: Mapping[str, Any], by_type: Any, owner: Any) -> List[Resource]:
    info, given = item.get("_info") or {}, item.get("params") or {}
    params = _params(item, neutron.RULE_PARAMS)
    params["security_group_id"] = info.get("security_group_id") or _named(
        by_type, GROUP, given.get("security_group_ref"))
    params["remote_group_id"] = info.get("remote_group_id") or _named(
        by_type, GROUP, given.get("remote_group_ref"))
    refs = {"security_group_id": "security_group"}
    if params["remote_group_id"]:
        refs["remote_group_id"] = "security_group"
    group = (given.get("security_group_ref") or {}).get("name") or params["security_group_id"]
    return [Resource("security_group_rule", _id(item), params,
                     {"label": neutron.rule_label(SimpleNamespace(**params), group)}, refs=refs)]


def _tags(item: Mapping[str, Any]) -> List[str]:
    return list((item.get("params") or {}).get("tags") or [])


READERS = {PROJECT: _project_res, USER: _user, ROLE: _role, KEYPAIR: _keypair, FLAVOR: _flavor,
           NETWORK: _network, SUBNET: _subnet, ROUTER: _router, GROUP: _group, RULE: _rule}
