"""Keystone: which project at the destination receives a migrated volume or image, and the
names of projects and domains at the source (the default destination is found by them)."""
import secrets
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote

from .clouds import api
from .errors import NotFound, RefusedError
from .names import SOURCE_ID_KEY
from .tenant import Resource, source_tag, Store


def resolve_project(conn: Any, name_or_id: str, domain: Optional[str] = None) -> Dict[str, Any]:
    """The destination project named (or with the id) ``name_or_id``.

    A name must be unambiguous: projects of one name in several domains are refused (pass the
    id). ``domain`` (a domain name) restricts the search: a default taken from the source
    project's name must land in the domain of the same name, never in another tenant's."""
    named = api("projects named %s" % name_or_id,
                lambda: list(conn.identity.projects(name=name_or_id)))
    if not named:
        try:
            project = api("project %s" % name_or_id, lambda: conn.identity.get_project(name_or_id))
        except NotFound:
            raise NotFound("project %r does not exist at the destination" % name_or_id) from None
        return {"id": project.id, "name": project.name,
                "domain": domain_name(conn, project.domain_id)}
    found = [(p, domain_name(conn, p.domain_id)) for p in named]
    if domain is not None:
        matching: List[Tuple[Any, Optional[str]]] = [(p, d) for p, d in found if d == domain]
        if not matching:
            raise NotFound("project %r exists at the destination only in domain %s, not in "
                           "domain %r (the source's): pass destination_project=<project id>"
                           % (name_or_id, ", ".join(sorted(str(d) for _, d in found)), domain))
        found = matching
    if len(found) > 1:
        raise RefusedError("%d projects are named %r at the destination (domains %s): pass "
                           "destination_project=<project id>" % (
                               len(found), name_or_id, ", ".join(sorted(str(d) for _, d in found))))
    project, its_domain = found[0]
    return {"id": project.id, "name": project.name, "domain": its_domain}


def project_for(conn: Any, volume: Dict[str, Any], given: Optional[str] = None) -> Dict[str, Any]:
    """The project given, else the one of the source project's name in the domain of the
    source project's domain name."""
    if given:
        return resolve_project(conn, given)
    return resolve_project(conn, volume["project_name"] or volume["project_id"],
                           domain=volume.get("project_domain"))


def domain_name(conn: Any, domain_id: Optional[str]) -> Optional[str]:
    if not domain_id:
        return None
    return api("domain %s" % domain_id, lambda: conn.identity.get_domain(domain_id)).name


def project_and_domain(conn: Any, project_id: str) -> Tuple[Optional[str], Optional[str]]:
    """The names of a source project and of its domain; (None, None) for a reader without
    identity rights, who still gets the rest of a description."""
    try:
        project = conn.identity.get_project(project_id)
        return project.name, conn.identity.get_domain(project.domain_id).name
    except Exception:
        return None, None


# --------------------------------------------------------------------------- a tenant's identity
# The project (Keystone tags carry the pack's mark), the users and groups with a role on it and
# the members of those groups (users and groups take no tags: the mark is an extra attribute,
# which Keystone keeps and returns with them), and the role assignments.

USER_PARAMS = ("name", "description", "email", "enabled")
GROUP_PARAMS = ("name", "description")
PASSWORD_POLICIES = ("disabled", "random")
# where a random password of a user the pack made is kept (encrypted): never in a result
PASSWORD_KEY = "ceph_migrate.tenant_password.%s"


def _raw(identity: Any, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
    """One Keystone call as JSON: users' and groups' extra attributes (the pack's mark) are not
    in openstacksdk's resources. None for a 404 and an empty answer."""
    from openstack import exceptions

    response = getattr(identity, method)(path, json=body, raise_exc=False) if body is not None \
        else getattr(identity, method)(path, raise_exc=False)
    if response.status_code == 404:
        return None
    exceptions.raise_from_response(response)
    return response.json() if response.content else None


def _domains(identity: Any) -> Dict[str, str]:
    return {d.id: d.name for d in identity.domains()}


def _project_params(project: Any, domains: Mapping[str, str]) -> Dict[str, Any]:
    return {"name": project.name, "description": project.description or "",
            "enabled": bool(project.is_enabled), "domain": domains.get(project.domain_id),
            "tags": sorted(t for t in project.tags or [] if not t.startswith(SOURCE_ID_KEY))}


def _person(found: Mapping[str, Any], keys: Sequence[str], domains: Mapping[str, str]
            ) -> Dict[str, Any]:
    params = {k: found.get(k) for k in keys}
    if "description" in params:
        params["description"] = params["description"] or ""
    if "enabled" in params:
        params["enabled"] = bool(params["enabled"])
    params["domain"] = domains.get(str(found.get("domain_id")))
    return params


def export(conn: Any, project_id: str) -> List[Resource]:
    """The project, every user and group with a role on it (and the groups' members), and
    those role assignments (by role name: role ids differ between clouds)."""
    identity = conn.identity
    domains = api("domains", lambda: _domains(identity))
    project = api("project %s" % project_id, lambda: identity.get_project(project_id))
    found = [Resource("project", project.id, _project_params(project, domains))]
    roles = api("roles", lambda: {r.id: r.name for r in identity.roles()})
    assigned = api("role assignments on %s" % project_id, lambda: list(
        identity.role_assignments(scope_project_id=project_id)))
    users: Dict[str, None] = {}
    groups: Dict[str, List[str]] = {}
    for a in assigned:
        actor = "user" if a.user else "group"
        actor_id = (a.user or a.group)["id"]
        role = roles.get((a.role or {}).get("id"), (a.role or {}).get("id"))
        found.append(Resource("role_assignment", "%s:%s:%s" % (actor, actor_id, role),
                              {"actor": actor, "%s_id" % actor: actor_id, "role": role},
                              refs={"%s_id" % actor: actor}))
        if actor == "user":
            users[actor_id] = None
        elif actor_id not in groups:
            members = api("members of group %s" % actor_id,
                          lambda: sorted(u.id for u in identity.group_users(actor_id)))
            groups[actor_id] = members
            users.update((m, None) for m in members)
    for user_id in users:
        user = api("user %s" % user_id, lambda: _raw(identity, "get", "/users/%s" % user_id))
        found.append(Resource("user", user_id, _person(user["user"], USER_PARAMS, domains),
                              {"default_project_id": user["user"].get("default_project_id")}))
    for group_id, members in groups.items():
        group = api("group %s" % group_id, lambda: _raw(identity, "get", "/groups/%s" % group_id))
        found.append(Resource("group", group_id, dict(
            _person(group["group"], GROUP_PARAMS, domains), members=members),
            refs={"members": "user"}))
    return found


def translated(resource: Resource, wanted: Dict[str, Any], tmap: Any,
               given_project: Optional[Mapping[str, Any]], conn: Any,
               password_policy: str) -> Dict[str, Any]:
    """The project given by the operator keeps its name and domain; a user made with the
    `disabled` policy stays disabled; a role must exist at the destination (by name)."""
    if resource.kind == "project" and given_project:
        return dict(wanted, name=given_project["name"], domain=given_project["domain"])
    if resource.kind == "user" and password_policy == "disabled":
        return dict(wanted, enabled=False)
    if resource.kind == "role_assignment":
        role = api("role %s" % wanted["role"], lambda: conn.identity.find_role(
            wanted["role"], ignore_missing=True))
        if role is None:
            raise RefusedError("role %s does not exist at the destination" % wanted["role"])
        return dict({k: v for k, v in wanted.items() if k != "role"}, role_id=role.id)
    return wanted


def _domain_id(identity: Any, name: Optional[str]) -> str:
    domain = identity.find_domain(name, ignore_missing=True) if name else None
    if domain is None:
        raise RefusedError("domain %s does not exist at the destination: create it first" % name)
    return domain.id


def project_store(conn: Any, given: Optional[Mapping[str, Any]]) -> Store:
    """Projects: GIVEN (the destination project the operator named) is the source project's
    counterpart by construction; otherwise found by the pack's tag, or made with it."""
    identity = conn.identity

    def actual(project: Any) -> Dict[str, Any]:
        return _project_params(project, _domains(identity))

    def create(wanted: Dict[str, Any], tag: str) -> Any:
        return identity.create_project(
            name=wanted["name"], description=wanted["description"],
            is_enabled=wanted["enabled"], domain_id=_domain_id(identity, wanted["domain"]),
            tags=sorted(wanted["tags"] + [tag]))

    def update(project: Any, attrs: Dict[str, Any]) -> Any:
        if "tags" in attrs:
            marks = [t for t in project.tags or [] if t.startswith(SOURCE_ID_KEY)]
            attrs = dict(attrs, tags=sorted(attrs["tags"] + marks))
        if "enabled" in attrs:
            attrs["is_enabled"] = attrs.pop("enabled")
        return identity.update_project(project, **attrs)

    def tag(project: Any, mark: str) -> None:
        identity.update_project(project, tags=sorted(set(project.tags or []) | {mark}))
    return Store(
        get=lambda ident: identity.find_project(ident, ignore_missing=True),
        tagged=lambda mark: list(identity.projects(tags=mark)),
        named=lambda name: list(identity.projects(name=name)),
        actual=actual, create=create, update=update,
        updatable=("name", "description", "enabled", "tags"), tag=tag,
        builtin=(lambda wanted: identity.get_project(given["id"])) if given else None)


def _people_store(conn: Any, kind: str, keys: Sequence[str],
                  keep_password: Optional[Callable[[Dict[str, Any], str], None]] = None
                  ) -> Store:
    """Users or groups through Keystone's own JSON. One the pack makes carries its mark (an
    extra attribute); one of the same name in the domain is the same account, adopted as it
    is and never changed, marked or removed. With KEEP_PASSWORD a user is made with a random
    password, handed to it (with the user) once the user exists."""
    identity = conn.identity
    plural = kind + "s"

    def listing(query: str = "") -> List[Dict[str, Any]]:
        return (_raw(identity, "get", "/%s%s" % (plural, query)) or {}).get(plural) or []

    def actual(found: Dict[str, Any]) -> Dict[str, Any]:
        params = _person(found, keys, _domains(identity))
        if kind == "group":
            params["members"] = sorted(u.id for u in identity.group_users(found["id"]))
        return params

    def create(wanted: Dict[str, Any], mark: str) -> Dict[str, Any]:
        body = {k: wanted[k] for k in keys if wanted.get(k) is not None}
        body["domain_id"] = _domain_id(identity, wanted["domain"])
        body[SOURCE_ID_KEY] = mark.split("=", 1)[1]
        password = secrets.token_urlsafe(18) if keep_password else None
        if password:
            body["password"] = password
        created = _raw(identity, "post", "/%s" % plural, {kind: body})[kind]
        if kind == "group":
            for member in wanted.get("members") or []:
                identity.add_user_to_group(member, created["id"])
        if keep_password and password:
            keep_password(created, password)
        return created

    def update(found: Dict[str, Any], attrs: Dict[str, Any]) -> Any:
        members = attrs.pop("members", None)
        if attrs:
            _raw(identity, "patch", "/%s/%s" % (plural, found["id"]), {kind: attrs})
        have = {u.id for u in identity.group_users(found["id"])} if members else set()
        for member in members or []:
            if member not in have:             # added, never taken away
                identity.add_user_to_group(member, found["id"])
        return found

    def same_name(wanted: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        domain = identity.find_domain(wanted["domain"], ignore_missing=True) \
            if wanted.get("domain") else None
        if domain is None:
            return None
        named = listing("?name=%s&domain_id=%s" % (quote(wanted["name"]), domain.id))
        return named[0] if named else None
    return Store(
        get=lambda ident: (_raw(identity, "get", "/%s/%s" % (plural, ident)) or {}).get(kind),
        tagged=lambda mark: [f for f in listing()
                             if f.get(SOURCE_ID_KEY) == mark.split("=", 1)[1]],
        named=lambda name: listing("?name=%s" % quote(name)),
        actual=actual, create=create, update=update,
        updatable=tuple(k for k in keys if k != "name")
        + (("members",) if kind == "group" else ()),
        ident=lambda found: found["id"], builtin=same_name, keep_builtin=True)


def user_store(conn: Any, policy: str, keep_secret: Optional[Callable[[str, str], None]],
               passwords: List[Dict[str, str]]) -> Store:
    """Users the pack makes are disabled without a password (policy `disabled`), or get a random
    one KEEP_SECRET stores (encrypted, in the datastore), named (never shown) in PASSWORDS
    (`random`; import_tenant refuses it without a datastore)."""
    def keep(user: Dict[str, Any], password: str) -> None:
        key = PASSWORD_KEY % user["id"]
        if keep_secret is None:
            raise RefusedError("random passwords need the StackStorm datastore to keep them")
        keep_secret(key, password)
        passwords.append({"user": user["name"], "destination_id": user["id"],
                          "datastore_key": key})
    return _people_store(conn, "user", USER_PARAMS, keep if policy == "random" else None)


def group_store(conn: Any) -> Store:
    return _people_store(conn, "group", GROUP_PARAMS)


def role_assignment_store(conn: Any, project_id: str) -> Store:
    """A role of a user or group on the destination project: it exists or not (no tag, its id
    is project:actor:actor id:role id); one already there is the destination's own."""
    identity = conn.identity

    def ident(wanted: Mapping[str, Any]) -> str:
        actor = wanted["actor"]
        return "%s:%s:%s:%s" % (project_id, actor, wanted["%s_id" % actor], wanted["role_id"])

    def create(wanted: Dict[str, Any], mark: str) -> Dict[str, Any]:
        assign = identity.assign_project_role_to_user if wanted["actor"] == "user" else \
            identity.assign_project_role_to_group
        assign(project_id, wanted["%s_id" % wanted["actor"]], wanted["role_id"])
        return dict(wanted, id=ident(wanted))
    return Store(
        get=lambda assignment: _assignment(identity, assignment),
        tagged=lambda mark: [], named=lambda name: [],
        actual=lambda found: {k: v for k, v in found.items() if k != "id"}, create=create,
        update=lambda found, attrs: found, updatable=(),
        ident=lambda found: found["id"],
        builtin=lambda wanted: _assignment(identity, ident(wanted)))


def _assignment(identity: Any, assignment: str) -> Optional[Dict[str, Any]]:
    project_id, actor, actor_id, role_id = assignment.split(":", 3)
    check = identity.validate_user_has_project_role if actor == "user" else \
        identity.validate_group_has_project_role
    if not check(project_id, actor_id, role_id):
        return None
    return {"actor": actor, "%s_id" % actor: actor_id, "role_id": role_id, "id": assignment}


def remove(conn: Any, kind: str, destination_id: str, source_id: str,
           dry_run: bool = False) -> str:
    """Delete what the mapping says the pack made, only while it carries the pack's mark; a
    project only when nothing is left in it."""
    identity = conn.identity
    if kind == "role_assignment":
        if _assignment(identity, destination_id) is None:
            return "gone"
        project_id, actor, actor_id, role_id = destination_id.split(":", 3)
        unassign = identity.unassign_project_role_from_user if actor == "user" else \
            identity.unassign_project_role_from_group
        if not dry_run:
            unassign(project_id, actor_id, role_id)
        return "would be removed" if dry_run else "removed"
    if kind == "project":
        project = identity.find_project(destination_id, ignore_missing=True)
        if project is None:
            return "gone"
        if source_tag(source_id) not in (project.tags or []):
            return "kept: it does not carry the tag %s" % source_tag(source_id)
        left = _left_in(conn, destination_id)
        if left:
            return "kept: %s still in it" % ", ".join(left)
        if not dry_run:
            identity.delete_project(project, ignore_missing=True)
        return "would be removed" if dry_run else "removed"
    plural = kind + "s"
    found = (_raw(identity, "get", "/%s/%s" % (plural, destination_id)) or {}).get(kind)
    if found is None:
        return "gone"
    if found.get(SOURCE_ID_KEY) != source_id:
        return "kept: it does not carry the mark %s=%s" % (SOURCE_ID_KEY, source_id)
    if not dry_run:
        _raw(identity, "delete", "/%s/%s" % (plural, destination_id))
    return "would be removed" if dry_run else "removed"


def _left_in(conn: Any, project_id: str) -> List[str]:
    """What the project still holds that a deletion would orphan."""
    left = []
    for what, listing in (
            ("servers", lambda: conn.compute.servers(all_projects=True, project_id=project_id)),
            ("volumes", lambda: conn.block_storage.volumes(all_projects=True,
                                                           project_id=project_id)),
            ("images", lambda: conn.image.images(owner=project_id)),
            ("networks", lambda: conn.network.networks(project_id=project_id))):
        count = len(list(listing()))
        if count:
            left.append("%d %s" % (count, what))
    return left


def untag(conn: Any, kind: str, destination_id: str, source_id: str,
          dry_run: bool = False) -> str:
    """An adopted project loses the pack's tag; adopted users, groups and assignments carry no
    mark."""
    identity = conn.identity
    if kind == "project" and not dry_run:
        project = identity.find_project(destination_id, ignore_missing=True)
        if project is not None and source_tag(source_id) in (project.tags or []):
            identity.update_project(project, tags=sorted(
                set(project.tags) - {source_tag(source_id)}))
    return "kept: adopted, not made by the pack"
