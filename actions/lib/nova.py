"""Nova: the flavors a project uses or may use, and its server groups, exported as
``tenant.Resource``s and brought to the destination through ``tenant.reconcile``.

Flavors are global: the pack marks one it made with an extra spec naming the source flavor
(flavors take no tags), keeps the source's id when the destination has no flavor of that id,
and never removes anyone from an access list. Server groups take no mark at all: they are found
through the mapping only (or adopted by name when asked), so a lost mapping makes them again.
"""
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from .clouds import api
from .tenant import Resource, Store, source_tag, user_tags

# the pack's mark on a flavor it made (an extra spec: the source flavor's id)
FLAVOR_MARK = "ceph_migrate:source_id"
FLAVOR_PARAMS = ("name", "vcpus", "ram", "disk", "ephemeral", "swap", "rxtx_factor",
                 "is_public", "description")
GROUP_PARAMS = ("name", "policy", "rules")
KEYPAIR_PARAMS = ("name", "public_key", "type", "user_id")
# what a destination server is compared on (the rest of its request cannot change in place)
SERVER_PARAMS = ("name", "description", "metadata", "tags", "flavor_name", "key_name")
SERVER_UPDATABLE = ("name", "description", "metadata", "tags")


def _specs(flavor: Any) -> Dict[str, str]:
    return {k: v for k, v in sorted((flavor.extra_specs or {}).items()) if k != FLAVOR_MARK}


def _flavor_params(compute: Any, flavor: Any) -> Dict[str, Any]:
    params = {k: getattr(flavor, k, None) for k in FLAVOR_PARAMS}
    params["extra_specs"] = _specs(flavor)
    params["access"] = [] if flavor.is_public else sorted(
        a["tenant_id"] for a in compute.get_flavor_access(flavor))
    return params


def _reader(compute: Any, flavor: Any) -> Callable[[], Dict[str, Any]]:
    return lambda: _flavor_params(compute, flavor)


def _all_flavors(compute: Any) -> List[Any]:
    return list(compute.flavors(is_public=None, get_extra_specs=True))


# --------------------------------------------------------------------------- export

def export(conn: Any, project_id: str, user_ids: Sequence[str] = ()) -> List[Resource]:
    """The private flavors PROJECT_ID may use, the public ones its servers run on, its server
    groups, and the keypairs of USER_IDS (the tenant's users: keypairs belong to users)."""
    compute = conn.compute
    flavors = api("flavors", lambda: _all_flavors(compute))
    used = {(s.flavor or {}).get("original_name") or (s.flavor or {}).get("id")
            for s in api("servers of %s" % project_id, lambda: list(
                compute.servers(all_projects=True, project_id=project_id)))}
    found: List[Resource] = []
    for flavor in flavors:
        params = api("flavor %s" % flavor.id, _reader(compute, flavor))
        if project_id in params["access"] or flavor.name in used or flavor.id in used:
            found.append(Resource("flavor", flavor.id, params,
                                  {"is_disabled": flavor.is_disabled},
                                  refs={}))
    groups = api("server groups", lambda: list(compute.server_groups(all_projects=True)))
    for group in groups:
        if group.project_id == project_id:
            found.append(Resource("server_group", group.id,
                                  {k: _plain(getattr(group, k, None)) for k in GROUP_PARAMS},
                                  {"members": sorted(group.member_ids or [])}))
    for user_id in user_ids:
        for pair in api("keypairs of user %s" % user_id,
                        lambda: list(compute.keypairs(user_id=user_id))):
            found.append(Resource("keypair", "%s:%s" % (user_id, pair.name),
                                  dict(_keypair_params(pair), user_id=user_id),
                                  {"fingerprint": pair.fingerprint}, refs={"user_id": "user"}))
    return found


def _keypair_params(pair: Any) -> Dict[str, Any]:
    return {k: getattr(pair, k, None) for k in KEYPAIR_PARAMS}


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


# --------------------------------------------------------------------------- translation

def translated(resource: Resource, wanted: Dict[str, Any], projects: Mapping[str, str]
               ) -> Dict[str, Any]:
    """A flavor's access list through PROJECTS (source project id -> destination's)."""
    if resource.kind != "flavor":
        return wanted
    return dict(wanted, access=sorted(projects.get(p, p) for p in wanted.get("access") or []))


# --------------------------------------------------------------------------- stores

def _source_of(tag: str) -> str:
    return tag.split("=", 1)[1]


def flavor_store(conn: Any) -> Store:
    compute = conn.compute

    def find(ident: str) -> Optional[Any]:
        flavor = compute.find_flavor(ident, ignore_missing=True)
        return flavor if flavor is not None and flavor.id == ident else None

    def tagged(tag: str) -> List[Any]:
        return [f for f in _all_flavors(compute)
                if (f.extra_specs or {}).get(FLAVOR_MARK) == _source_of(tag)]

    def create(wanted: Dict[str, Any], tag: str) -> Any:
        source_id = _source_of(tag)
        attrs = {k: v for k, v in wanted.items() if k in FLAVOR_PARAMS and v is not None}
        if find(source_id) is None:
            attrs["id"] = source_id          # the same id when it is free
        flavor = compute.create_flavor(**attrs)
        compute.create_flavor_extra_specs(flavor, dict(wanted.get("extra_specs") or {},
                                                       **{FLAVOR_MARK: source_id}))
        for project in wanted.get("access") or []:
            compute.flavor_add_tenant_access(flavor, project)
        return flavor

    def update(flavor: Any, attrs: Dict[str, Any]) -> Any:
        if "description" in attrs:
            compute.update_flavor(flavor, description=attrs["description"])
        for key, value in (attrs.get("extra_specs") or {}).items():
            if (flavor.extra_specs or {}).get(key) != value:
                compute.update_flavor_extra_specs_property(flavor, key, value)
        if "access" in attrs:
            have = {a["tenant_id"] for a in compute.get_flavor_access(flavor)}
            for project in attrs["access"]:
                if project not in have:         # added, never taken away
                    compute.flavor_add_tenant_access(flavor, project)
        return flavor

    def tag(flavor: Any, mark: str) -> None:
        compute.update_flavor_extra_specs_property(flavor, FLAVOR_MARK, _source_of(mark))
    return Store(
        get=find, tagged=tagged,
        named=lambda name: [f for f in _all_flavors(compute) if f.name == name],
        actual=lambda f: _flavor_params(compute, f),
        create=create, update=update,
        updatable=("description", "extra_specs", "access"),
        delete=lambda f: compute.delete_flavor(f), tag=tag)


def server_group_store(conn: Any, project_conn: Callable[[], Any]) -> Store:
    """Server groups are made in the caller's project: PROJECT_CONN is the admin scoped to the
    destination project (made on first use)."""
    compute = conn.compute
    scoped: Dict[str, Any] = {}

    def in_project() -> Any:
        if "conn" not in scoped:
            scoped["conn"] = project_conn()
        return scoped["conn"].compute

    def actual(group: Any) -> Dict[str, Any]:
        return {k: _plain(getattr(group, k, None)) for k in GROUP_PARAMS}
    return Store(
        get=lambda ident: compute.find_server_group(ident, ignore_missing=True),
        tagged=lambda tag: [],
        named=lambda name: [g for g in in_project().server_groups() if g.name == name],
        actual=actual,
        create=lambda wanted, tag: in_project().create_server_group(
            **{k: v for k, v in wanted.items() if v is not None}),
        update=lambda group, attrs: group,
        updatable=())


def keypair_store(conn: Any) -> Store:
    """A user's keypair (id user id:name). Keypairs take no mark: one of that user and name
    already there is the destination's own (equal, or a conflict: a key is never replaced)."""
    compute = conn.compute

    def find(ident: str) -> Optional[Any]:
        user_id, name = ident.split(":", 1)
        pair = compute.find_keypair(name, user_id=user_id, ignore_missing=True)
        if pair is not None and not pair.user_id:
            pair.user_id = user_id
        return pair
    return Store(
        get=find, tagged=lambda mark: [], named=lambda name: [],
        actual=_keypair_params,
        create=lambda wanted, mark: compute.create_keypair(
            **{k: v for k, v in wanted.items() if v is not None}),
        update=lambda pair, attrs: pair, updatable=(),
        ident=lambda pair: "%s:%s" % (pair.user_id, pair.name),
        builtin=lambda wanted: find("%s:%s" % (wanted["user_id"], wanted["name"])))


def _server_params(server: Any) -> Dict[str, Any]:
    return {"name": server.name, "description": server.description,
            "metadata": dict(server.metadata or {}), "tags": user_tags(server),
            "flavor_name": (server.flavor or {}).get("original_name"),
            "key_name": server.key_name}


def project_servers(compute: Any, project_id: str) -> List[Any]:
    """The servers of a project (any cloud, as an admin), by name: the order waves take."""
    return sorted(api("servers of project %s" % project_id, lambda: list(
        compute.servers(all_projects=True, project_id=project_id))),
        key=lambda s: (s.name or "", s.id))


def live_server(compute: Any, server_id: str) -> Optional[Any]:
    """A server of any project, None when it is gone."""
    server = compute.find_server(server_id, ignore_missing=True, all_projects=True)
    return server if server is not None and server.status != "DELETED" else None


def counterpart(compute: Any, source_id: str) -> Optional[Any]:
    """The destination server the pack made of source server SOURCE_ID (its tag; any
    project), None before its cutover: once there, the source's disks are no longer copied."""
    found = api("servers made of %s" % source_id, lambda: [
        s for s in compute.servers(all_projects=True, tags=source_tag(source_id))
        if s.status != "DELETED"])
    return found[0] if found else None


def server_store(conn: Any, project_id: str, create: Callable[[List[str]], Any]) -> Store:
    """A server in the destination project, found by the pack's tag (``tags`` carry it);
    CREATE(tags) makes it from the request the caller built. Never deleted here: an ERROR
    server of the pack's is a conflict to look at (deleting it could take its volumes)."""
    compute = conn.compute

    def update(server: Any, attrs: Dict[str, Any]) -> Any:
        if "name" in attrs or "description" in attrs:
            compute.update_server(server, **{k: attrs[k] for k in ("name", "description")
                                             if k in attrs})
        if "metadata" in attrs:
            compute.set_server_metadata(server, **attrs["metadata"])
        if "tags" in attrs:
            mark = sorted(set(server.tags or []) - set(user_tags(server)))
            server.set_tags(compute, sorted(attrs["tags"]) + mark)
        return server
    return Store(
        get=lambda ident: live_server(compute, ident),
        tagged=lambda tag: list(compute.servers(all_projects=True, project_id=project_id,
                                                tags=tag)),
        named=lambda name: [], actual=_server_params,
        create=lambda wanted, tag: create(sorted(wanted["tags"]) + [tag]),
        update=update, updatable=SERVER_UPDATABLE,
        failed=lambda server: server.status == "ERROR")


def remove(conn: Any, kind: str, destination_id: str, source_id: str,
           dry_run: bool = False) -> str:
    """Delete a flavor or a server (only with the pack's mark for SOURCE_ID), a keypair or a
    server group the mapping says the pack made."""
    compute = conn.compute
    if kind == "server":
        return _remove_server(compute, destination_id, source_id, dry_run)
    if kind == "keypair":
        user_id, name = destination_id.split(":", 1)
        if compute.find_keypair(name, user_id=user_id, ignore_missing=True) is None:
            return "gone"
        if not dry_run:
            compute.delete_keypair(name, user_id=user_id, ignore_missing=True)
        return "would be removed" if dry_run else "removed"
    if kind == "flavor":
        flavor = compute.find_flavor(destination_id, ignore_missing=True)
        if flavor is None or flavor.id != destination_id:
            return "gone"
        specs = compute.fetch_flavor_extra_specs(flavor).extra_specs or {}
        if specs.get(FLAVOR_MARK) != source_id:
            return "kept: it does not carry the mark %s=%s" % (FLAVOR_MARK, source_id)
        if not dry_run:
            compute.delete_flavor(flavor, ignore_missing=True)
        return "would be removed" if dry_run else "removed"
    group = compute.find_server_group(destination_id, ignore_missing=True)
    if group is None:
        return "gone"
    if group.member_ids:
        return "kept: servers are in it (%s)" % ", ".join(sorted(group.member_ids))
    if not dry_run:
        compute.delete_server_group(group, ignore_missing=True)
    return "would be removed" if dry_run else "removed"


def _remove_server(compute: Any, server_id: str, source_id: str, dry_run: bool) -> str:
    """A destination server goes only with the pack's tag for SOURCE_ID; the call returns
    once Nova has deleted it (its ports are then free for their own rollback)."""
    server = live_server(compute, server_id)
    if server is None:
        return "gone"
    if source_tag(source_id) not in (server.tags or []):
        return "kept: it does not carry the tag %s" % source_tag(source_id)
    if dry_run:
        return "would be removed"
    compute.delete_server(server, ignore_missing=True)
    compute.wait_for_delete(server, interval=1, wait=300)
    return "removed"


def untag(conn: Any, kind: str, destination_id: str, source_id: str,
          dry_run: bool = False) -> str:
    """An adopted flavor loses the pack's mark; an adopted server group carries none."""
    if kind == "flavor":
        compute = conn.compute
        flavor = compute.find_flavor(destination_id, ignore_missing=True)
        if flavor is not None and flavor.id == destination_id and not dry_run and \
                (compute.fetch_flavor_extra_specs(flavor).extra_specs or {}).get(
                    FLAVOR_MARK) == source_id:
            compute.delete_flavor_extra_specs_property(flavor, FLAVOR_MARK)
    return "kept: adopted, not made by the pack"
