"""Neutron: a project's networks, subnets, routers, security groups and rules, exported as
``tenant.Resource``s and brought to the destination through ``tenant.reconcile``.

Parameters use openstacksdk's attribute names. Export reads as an admin filtered by project;
import acts as an admin on behalf of the destination project (``project_id`` on create).
"""
import ipaddress
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .clouds import api
from .errors import CephMigrateError, RefusedError
from .tenant import Resource, source_tag, Store, TenantMap, user_tags

NETWORK_PARAMS = ("name", "description", "mtu", "is_port_security_enabled", "is_shared",
                  "is_admin_state_up", "availability_zone_hints", "dns_domain",
                  "provider_network_type", "provider_physical_network")
NETWORK_FACTS = ("status", "provider_segmentation_id", "is_router_external")
SUBNET_PARAMS = ("name", "description", "network_id", "ip_version", "cidr", "gateway_ip",
                 "is_dhcp_enabled", "allocation_pools", "host_routes", "dns_nameservers",
                 "ipv6_ra_mode", "ipv6_address_mode")
SUBNET_FIXED = ("network_id", "ip_version", "cidr", "ipv6_ra_mode", "ipv6_address_mode")
ROUTER_PARAMS = ("name", "description", "is_admin_state_up")
GROUP_PARAMS = ("name", "description", "stateful")
RULE_PARAMS = ("security_group_id", "direction", "ether_type", "protocol", "port_range_min",
               "port_range_max", "remote_ip_prefix", "remote_group_id", "description")
INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed",
                    "network:ha_router_replicated_interface")


def _pick(obj: Any, keys: Sequence[str]) -> Dict[str, Any]:
    return {k: plain(getattr(obj, k, None)) for k in keys}


def plain(value: Any) -> Any:
    """openstacksdk values as plain data (lists of dicts sorted, so exports are stable)."""
    if isinstance(value, list):
        items = [plain(v) for v in value]
        return sorted(items, key=lambda v: repr(sorted(v.items())) if isinstance(v, dict)
                      else repr(v))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in sorted(value.items())}
    return value


# --------------------------------------------------------------------------- export

def export(conn: Any, project_id: str, external: Dict[str, str]) -> List[Resource]:
    """Every network resource of PROJECT_ID at the source. EXTERNAL collects the external
    networks its routers use (source id -> name): the mapping's translation needs them."""
    net = conn.network
    found: List[Resource] = []
    networks = api("networks of %s" % project_id, lambda: list(net.networks(project_id=project_id)))
    for n in networks:
        if n.is_router_external:
            continue            # an operator's network: translated, never copied
        found.append(Resource("network", n.id, dict(_pick(n, NETWORK_PARAMS),
                                                    tags=user_tags(n)),
                              _pick(n, NETWORK_FACTS)))
    ours = {n.id for n in networks if not n.is_router_external}
    for s in api("subnets of %s" % project_id, lambda: list(net.subnets(project_id=project_id))):
        if s.network_id in ours:
            found.append(Resource("subnet", s.id, dict(_pick(s, SUBNET_PARAMS),
                                                       tags=user_tags(s)),
                                  {"subnet_pool_id": s.subnet_pool_id},
                                  refs={"network_id": "network"}))
    for r in api("routers of %s" % project_id, lambda: list(net.routers(project_id=project_id))):
        found.append(_export_router(net, r, external))
    groups = api("security groups of %s" % project_id,
                 lambda: list(net.security_groups(project_id=project_id)))
    for g in groups:
        found.append(Resource("security_group", g.id, dict(_pick(g, GROUP_PARAMS),
                                                           tags=user_tags(g))))
        for rule in api("rules of security group %s" % g.id, _rules_of(net, g.id)):
            refs = {"security_group_id": "security_group"}
            if rule.remote_group_id:
                refs["remote_group_id"] = "security_group"
            found.append(Resource("security_group_rule", rule.id, _pick(rule, RULE_PARAMS),
                                  {"label": rule_label(rule, g.name)}, refs=refs))
    return found


def _rules_of(net: Any, group_id: str) -> Callable[[], List[Any]]:
    return lambda: list(net.security_group_rules(security_group_id=group_id))


def _export_router(net: Any, router: Any, external: Dict[str, str]) -> Resource:
    gateway = router.external_gateway_info or {}
    params = dict(_pick(router, ROUTER_PARAMS), tags=user_tags(router), routes=plain(
        router.routes or []))
    facts: Dict[str, Any] = {"status": router.status, "is_ha": router.is_ha,
                             "is_distributed": router.is_distributed}
    if gateway.get("network_id"):
        ext = api("external network %s" % gateway["network_id"],
                  lambda: net.get_network(gateway["network_id"]))
        external[ext.id] = ext.name
        params["external_gateway_info"] = {"network_id": ext.id,
                                           "enable_snat": gateway.get("enable_snat", True)}
        facts["external_fixed_ips"] = plain(gateway.get("external_fixed_ips") or [])
    interfaces = []
    for port in api("ports of router %s" % router.id,
                    lambda: list(net.ports(device_id=router.id))):
        if port.device_owner in INTERFACE_OWNERS:
            for ip in port.fixed_ips or []:
                interfaces.append({"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]})
    params["interfaces"] = plain(interfaces)
    return Resource("router", router.id, params, facts, refs={"interfaces": "subnet"})


# --------------------------------------------------------------------------- translation

def translated(resource: Resource, wanted: Dict[str, Any], tmap: TenantMap) -> Dict[str, Any]:
    """Operator translations on top of resolved refs: physnets, external networks, AZs."""
    out = dict(wanted)
    if resource.kind == "network":
        out["provider_physical_network"] = tmap.translate(
            "physnets", out.get("provider_physical_network"))
        out["availability_zone_hints"] = [tmap.translate("availability_zones", z)
                                          for z in out.get("availability_zone_hints") or []]
    if resource.kind == "router" and out.get("external_gateway_info"):
        source_ext = out["external_gateway_info"]["network_id"]
        dest_ext = (tmap.translation.get("external_networks") or {}).get(source_ext)
        if not dest_ext:
            raise RefusedError("router %s uses external network %s: say which destination "
                               "network replaces it (translation external_networks)"
                               % (resource.source_id, source_ext))
        out["external_gateway_info"] = dict(out["external_gateway_info"], network_id=dest_ext)
    return out


# --------------------------------------------------------------------------- stores

def _tag_filter(list_: Callable[..., Any], project_id: str) -> Callable[[str], List[Any]]:
    return lambda tag: list(list_(project_id=project_id, tags=tag))


def _name_filter(list_: Callable[..., Any], project_id: str) -> Callable[[str], List[Any]]:
    return lambda name: list(list_(project_id=project_id, name=name))


# sent even when None: a subnet's null gateway means "no gateway", its absence "the first IP"
NULL_MEANS_SOMETHING = ("gateway_ip",)


def _tagged_create(create: Callable[..., Any], net: Any, project_id: str,
                   extra: Callable[[Any, Dict[str, Any]], None] = lambda obj, wanted: None
                   ) -> Callable[[Dict[str, Any], str], Any]:
    def make(wanted: Dict[str, Any], tag: str) -> Any:
        # None is left out (an extension's attribute the destination lacks is refused)
        attrs = {k: v for k, v in wanted.items() if k not in ("tags", "interfaces", "routes")
                 and (v is not None or k in NULL_MEANS_SOMETHING)}
        obj = create(project_id=project_id, **attrs)
        net.set_tags(obj, sorted(set(wanted.get("tags") or []) | {tag}))
        extra(obj, wanted)
        return obj
    return make


def _updater(update: Callable[..., Any], net: Any) -> Callable[[Any, Dict[str, Any]], Any]:
    def change(obj: Any, attrs: Dict[str, Any]) -> Any:
        plain = {k: v for k, v in attrs.items() if k != "tags"}
        if plain:
            obj = update(obj, **plain)
        if "tags" in attrs:
            ours = set(obj.tags or []) - set(user_tags(obj))
            net.set_tags(obj, sorted(set(attrs["tags"]) | set(ours)))
        return obj
    return change


def _actual(keys: Sequence[str]) -> Callable[[Any], Dict[str, Any]]:
    return lambda obj: dict(_pick(obj, keys), tags=user_tags(obj))


def _add_tag(net: Any) -> Callable[[Any, str], None]:
    return lambda obj, tag: net.set_tags(obj, sorted(set(obj.tags or []) | {tag}))


def _store(net: Any, project_id: str, kind: str, keys: Sequence[str],
           updatable: Sequence[str], **more: Any) -> Store:
    """The Store of a taggable, project-owned Neutron resource: found by id, tag or name in
    the project, made with the pack's tag, updated in place."""
    plural = {"security_group": "security_groups"}.get(kind, kind + "s")
    return Store(
        get=lambda i: getattr(net, "find_" + kind)(i, ignore_missing=True),
        tagged=_tag_filter(getattr(net, plural), project_id),
        named=_name_filter(getattr(net, plural), project_id),
        actual=more.pop("actual", _actual(keys)),
        create=more.pop("create", _tagged_create(getattr(net, "create_" + kind), net,
                                                 project_id)),
        update=more.pop("update", _updater(getattr(net, "update_" + kind), net)),
        updatable=tuple(updatable), tag=_add_tag(net), **more)


def network_store(conn: Any, project_id: str) -> Store:
    net = conn.network
    return _store(net, project_id, "network", NETWORK_PARAMS,
                  ("name", "description", "mtu", "is_port_security_enabled", "is_shared",
                   "is_admin_state_up", "dns_domain", "tags"),
                  failed=lambda n: n.status == "ERROR", delete=lambda n: net.delete_network(n))


def subnet_store(conn: Any, project_id: str) -> Store:
    return _store(conn.network, project_id, "subnet", SUBNET_PARAMS,
                  tuple(k for k in SUBNET_PARAMS if k not in SUBNET_FIXED) + ("tags",))


def _router_actual(net: Any) -> Callable[[Any], Dict[str, Any]]:
    def actual(router: Any) -> Dict[str, Any]:
        params = dict(_pick(router, ROUTER_PARAMS), tags=user_tags(router),
                      routes=plain(router.routes or []))
        gateway = router.external_gateway_info or {}
        if gateway.get("network_id"):
            params["external_gateway_info"] = {"network_id": gateway["network_id"],
                                               "enable_snat": gateway.get("enable_snat", True)}
        params["interfaces"] = plain([
            {"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]}
            for port in net.ports(device_id=router.id) if port.device_owner in INTERFACE_OWNERS
            for ip in port.fixed_ips or []])
        return params
    return actual


def _router_wiring(net: Any, project_id: str) -> Callable[[Any, Dict[str, Any]], None]:
    """Interfaces with their source addresses (a port of that address on the subnet), then
    the static routes (Neutron refuses a route whose next hop no interface reaches)."""
    def wire(router: Any, wanted: Dict[str, Any]) -> None:
        have = {(ip["subnet_id"], ip["ip_address"])
                for port in net.ports(device_id=router.id)
                if port.device_owner in INTERFACE_OWNERS for ip in port.fixed_ips or []}
        for iface in wanted.get("interfaces") or []:
            if (iface["subnet_id"], iface["ip_address"]) in have:
                continue
            subnet = net.get_subnet(iface["subnet_id"])
            if subnet.gateway_ip == iface["ip_address"]:
                net.add_interface_to_router(router, subnet.id)
            else:
                port = net.create_port(network_id=subnet.network_id, project_id=project_id,
                                       fixed_ips=[{"subnet_id": subnet.id,
                                                   "ip_address": iface["ip_address"]}])
                net.add_interface_to_router(router, None, port.id)
        if wanted.get("routes") is not None:
            net.update_router(router, routes=wanted["routes"])
    return wire


def router_store(conn: Any, project_id: str) -> Store:
    net = conn.network
    wire = _router_wiring(net, project_id)
    update = _updater(net.update_router, net)

    def change(router: Any, attrs: Dict[str, Any]) -> Any:
        wiring = {k: attrs.pop(k) for k in ("interfaces", "routes") if k in attrs}
        router = update(router, attrs) if attrs else router
        if wiring:
            wire(router, dict(wiring, routes=wiring.get("routes", router.routes)))
        return router
    return _store(net, project_id, "router", ROUTER_PARAMS,
                  ("name", "description", "is_admin_state_up", "tags", "routes", "interfaces",
                   "external_gateway_info"),
                  actual=_router_actual(net),
                  create=_tagged_create(net.create_router, net, project_id, wire),
                  update=change, failed=lambda r: r.status == "ERROR",
                  delete=lambda r: net.delete_router(r))


def security_group_store(conn: Any, project_id: str) -> Store:
    net = conn.network

    def default_group(wanted: Dict[str, Any]) -> Optional[Any]:
        """Every project has its `default` group: the source's is reconciled into it."""
        if wanted.get("name") != "default":
            return None
        return next(iter(net.security_groups(project_id=project_id, name="default")), None)
    return _store(net, project_id, "security_group", GROUP_PARAMS,
                  ("name", "description", "tags"), builtin=default_group)


def rule_label(rule: Any, group: str) -> str:
    """'web: ingress IPv4 tcp 443-443 from 0.0.0.0/0': a rule as an operator reads it."""
    ports = ("%s-%s" % (rule.port_range_min, rule.port_range_max)
             if rule.port_range_min is not None else "")
    remote = rule.remote_ip_prefix or ("group %s" % rule.remote_group_id
                                       if rule.remote_group_id else "")
    words = [rule.direction, rule.ether_type, rule.protocol or "any", ports,
             ("from " if rule.direction == "ingress" else "to ") + remote if remote else ""]
    return "%s: %s" % (group, " ".join(w for w in words if w))


def rule_key(params: Dict[str, Any]) -> Tuple[Any, ...]:
    """What makes two rules of a group the same rule (the description does not)."""
    return tuple(params.get(k) for k in RULE_PARAMS if k != "description")


def rule_store(conn: Any, project_id: str, wanted: Dict[str, Any]) -> Store:
    """Rules have no tags and no update: a rule is the rule of equal content in its group
    (found as if by its tag, so an equal rule already there is never made twice)."""
    net = conn.network

    def same(tag: str) -> List[Any]:
        return [r for r in net.security_group_rules(security_group_id=wanted["security_group_id"])
                if rule_key(_pick(r, RULE_PARAMS)) == rule_key(wanted)]
    return Store(
        get=lambda i: net.find_security_group_rule(i, ignore_missing=True),
        tagged=same,
        named=lambda name: [],
        # the description is not what a rule is (the destination's own default rules may
        # word it differently): compared as wanted
        actual=lambda r: dict(_pick(r, RULE_PARAMS), description=wanted.get("description")),
        create=lambda params, tag: net.create_security_group_rule(
            project_id=project_id, **{k: v for k, v in params.items() if v is not None}),
        update=lambda r, attrs: r,
        updatable=())


PORT_PARAMS = ("name", "description", "network_id", "mac_address", "fixed_ips",
               "security_group_ids", "allowed_address_pairs", "is_port_security_enabled")
PORT_FIXED = ("network_id", "mac_address", "fixed_ips")


def _port_actual(port: Any) -> Dict[str, Any]:
    params = dict(_pick(port, PORT_PARAMS), tags=user_tags(port))
    params["fixed_ips"] = plain([{"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]}
                                 for ip in port.fixed_ips or []])
    params["allowed_address_pairs"] = address_pairs(port.allowed_address_pairs)
    params["security_group_ids"] = sorted(port.security_group_ids or [])
    return params


def address_pairs(pairs: Optional[Sequence[Mapping[str, Any]]]) -> List[Dict[str, Any]]:
    """A port's allowed address pairs as compared and applied (address and MAC, sorted)."""
    return plain([{"ip_address": p["ip_address"], "mac_address": p.get("mac_address")}
                  for p in pairs or []])


def port_store(conn: Any, project_id: str) -> Store:
    """A server's port, made before its server: the source's MAC, every fixed address, its
    own security groups, allowed address pairs and port security."""
    return _store(conn.network, project_id, "port", PORT_PARAMS,
                  tuple(k for k in PORT_PARAMS if k not in PORT_FIXED) + ("tags",),
                  actual=_port_actual)


FLOATING_IP_PARAMS = ("floating_network_id", "port_id", "fixed_ip_address", "description")


def same_address(address: Optional[str], cidrs: Sequence[str]) -> Optional[str]:
    """ADDRESS when one of the destination external subnets (CIDRS) holds it: asked for
    again there; None otherwise (the destination picks one)."""
    if not address:
        return None
    ip = ipaddress.ip_address(address)
    return address if any(ip in ipaddress.ip_network(c, strict=False) for c in cidrs) else None


def floating_ip_store(conn: Any, project_id: str, preferred: Mapping[str, Optional[str]]
                      ) -> Store:
    """A server's floating IP at the destination, on its twin port: the source's address when
    the destination's external subnet holds it and it is free (PREFERRED: the source tag ->
    that address), else one the destination picks. Its address is not compared: it is what
    the destination could give."""
    net = conn.network

    def create(wanted: Dict[str, Any], tag: str) -> Any:
        attrs = {k: v for k, v in wanted.items() if k != "tags" and v is not None}
        address = preferred.get(tag)
        made = None
        if address:
            try:
                made = api("floating IP %s" % address, lambda: net.create_ip(
                    project_id=project_id, floating_ip_address=address, **attrs))
            except CephMigrateError:
                made = None     # taken at the destination: another address
        if made is None:
            made = net.create_ip(project_id=project_id, **attrs)
        net.set_tags(made, sorted(set(wanted.get("tags") or []) | {tag}))
        return made
    return Store(
        get=lambda i: net.find_ip(i, ignore_missing=True),
        tagged=_tag_filter(net.ips, project_id),
        named=lambda name: [],
        actual=_actual(FLOATING_IP_PARAMS), create=create,
        update=_updater(net.update_ip, net),
        updatable=("port_id", "fixed_ip_address", "description", "tags"),
        tag=_add_tag(net))


STORES = {"network": network_store, "subnet": subnet_store, "router": router_store,
          "security_group": security_group_store, "port": port_store}


def store_for(conn: Any, project_id: str, kind: str, wanted: Dict[str, Any]) -> Store:
    if kind == "security_group_rule":
        return rule_store(conn, project_id, wanted)
    return STORES[kind](conn, project_id)


def source_tag_of(obj: Any) -> Optional[str]:
    """The source id a resource the pack made carries, if any."""
    prefix = source_tag("")
    return next((t[len(prefix):] for t in (obj.tags or []) if t.startswith(prefix)), None)


# --------------------------------------------------------------------------- removal

FINDERS = {"network": "find_network", "subnet": "find_subnet", "router": "find_router",
           "security_group": "find_security_group",
           "security_group_rule": "find_security_group_rule", "port": "find_port",
           "floating_ip": "find_ip"}


def untag(conn: Any, kind: str, destination_id: str, source_id: str,
          dry_run: bool = False) -> str:
    """An adopted resource stays; only the pack's tag goes ('untagged', 'gone' or 'kept')."""
    net = conn.network
    obj = getattr(net, FINDERS[kind])(destination_id, ignore_missing=True)
    if obj is None:
        return "gone"
    if kind == "security_group_rule" or source_tag(source_id) not in (obj.tags or []):
        return "kept: adopted, not made by the pack"
    if not dry_run:
        net.set_tags(obj, sorted(set(obj.tags) - {source_tag(source_id)}))
    return "kept: adopted, not made by the pack; its tag %s" % (
        "would go" if dry_run else "removed")


def remove(conn: Any, kind: str, destination_id: str, source_id: str,
           dry_run: bool = False) -> str:
    """Delete one resource the pack made: 'removed', 'gone' (already), or 'kept: why' when it
    does not carry the pack's tag for SOURCE_ID (then it is not provably the pack's)."""
    net = conn.network
    obj = getattr(net, FINDERS[kind])(destination_id, ignore_missing=True)
    if obj is None:
        return "gone"
    if kind != "security_group_rule" and source_tag_of(obj) != source_id:
        return "kept: it does not carry the tag %s" % source_tag(source_id)
    if kind == "port" and obj.device_id and obj.device_owner.startswith("compute:"):
        return "kept: server %s uses it" % obj.device_id
    if dry_run:
        return "would be removed"
    if kind == "router":
        if obj.routes:
            net.update_router(obj, routes=[])
        for port in net.ports(device_id=obj.id):
            if port.device_owner in INTERFACE_OWNERS:
                net.remove_interface_from_router(obj, None, port.id)
        if obj.external_gateway_info:
            net.update_router(obj, external_gateway_info={})
    deleters = {"network": net.delete_network, "subnet": net.delete_subnet,
                "router": net.delete_router, "security_group": net.delete_security_group,
                "security_group_rule": net.delete_security_group_rule, "port": net.delete_port,
                "floating_ip": net.delete_ip}
    import openstack.exceptions as osexc
    try:
        deleters[kind](obj, ignore_missing=True)
    except osexc.ConflictException as exc:     # another's port on it, a router's interface...
        return "kept: in use (%s)" % (getattr(exc, "details", None) or exc)
    return "removed"
