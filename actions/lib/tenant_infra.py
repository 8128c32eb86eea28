"""A tenant's infrastructure between the clouds: export at the source, import at the
destination, compare the two through the mapping, roll back what the import made. The project,
its users, groups and role assignments (Keystone), keypairs, flavors and server groups (Nova),
quotas, networks, subnets, routers, security groups and rules (Neutron); a service module per
kind, one rule (tenant.reconcile) for all."""
import dataclasses
import json
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from .clouds import api
from .errors import RefusedError
from .keystone import resolve_project
from . import glance, keystone, neutron, nova, os_migrate, placement, quotas
from .capacity import require_room, written_by
from .image_transfer import carry_image, GLANCE_SNAPSHOT
from .clouds import CloudSettings
from .settings import DESTINATION, IMAGE_REGISTRATION, SOURCE, Settings
from .waiting import Reader, Writer
from .tenant import (differences, document, dump, import_all, KINDS, Resource, resolve_refs,
                     resources, source_tag, Store, summary, TenantMap, Translate)

# where the mapping lives in the StackStorm datastore (system scope: tenants cannot write it)
MAP_KEY = "ceph_migrate.tenant_map.%s"


def export_tenant(settings: Settings, project: str) -> Dict[str, Any]:
    """The source project's resources as a document (and its stable YAML text), with the
    external networks its routers use: the translation the import needs."""
    conn = settings.cloud(SOURCE).connect()
    found = resolve_project(conn, project)
    external: Dict[str, str] = {}
    identity = keystone.export(conn, found["id"])
    users = [r.source_id for r in identity if r.kind == "user"]
    doc = document({"id": found["id"], "name": found["name"], "domain": found["domain"]},
                   identity + quotas.export(conn, found["id"])
                   + nova.export(conn, found["id"], users) + glance.export(conn, found["id"])
                   + neutron.export(conn, found["id"], external))
    return exported(doc, external)


def exported(doc: Dict[str, Any], external: Mapping[str, str], **more: Any) -> Dict[str, Any]:
    """export_tenant's result for DOC: its stable YAML, a count per kind, the external
    networks (source id -> name) the import's translation needs."""
    counts = {kind: len((doc["resources"] or {}).get(kind) or {}) for kind in KINDS}
    return dict({"project": doc["project"], "document": doc, "yaml": dump(doc),
                 "counts": counts, "external_networks": dict(sorted(external.items()))},
                **more)


def export_from_os_migrate(texts: Sequence[str],
                           project: Optional[str] = None) -> Dict[str, Any]:
    """OS Migrate's exported files (their TEXTS) as export_tenant's result, the document keyed
    by the source ids in them (os_migrate.read)."""
    read = os_migrate.read(texts, project)
    doc = read["document"]
    external = {r.params["external_gateway_info"]["network_id"]: ""
                for r in resources(doc, "router") if r.params.get("external_gateway_info")}
    return exported(doc, external, skipped=read["skipped"])


def load_map(read: Optional[Reader], source_project_id: str,
             given: Optional[Mapping[str, Any]] = None) -> TenantMap:
    """The mapping kept for the source project (the datastore), with the translations GIVEN
    on top; without a datastore it starts empty and is rebuilt from the source tags."""
    stored = read(MAP_KEY % source_project_id) if read else None
    tmap = TenantMap.from_dict(json.loads(stored) if stored else None)
    extra = TenantMap.from_dict(given).translation      # unknown sections refused here
    for section, pairs in extra.items():
        tmap.translation[section] = dict(tmap.translation.get(section) or {}, **pairs)
    return tmap


def save_map(write: Optional[Writer], source_project_id: str, tmap: TenantMap,
             read: Optional[Reader] = None) -> None:
    """TMAP kept for the source project; with READ, only what this run changed is written
    over the mapping as it is now (another run may have saved since this one read it)."""
    if write is None:
        return
    if read is not None:
        tmap = tmap.merged_into(load_map(read, source_project_id))
    write(MAP_KEY % source_project_id, json.dumps(tmap.as_dict(), sort_keys=True))


def import_tenant(settings: Settings, doc: Mapping[str, Any],
                  destination_project: Optional[str], tmap: TenantMap,
                  kinds: Sequence[str] = KINDS, adopt: bool = False, dry_run: bool = False,
                  passwords: str = "disabled", keep_secret: Optional[Writer] = None,
                  conn: Any = None) -> Dict[str, Any]:
    """Every resource of KINDS into the destination project: DESTINATION_PROJECT (an existing
    project, the source project's counterpart), else the one an earlier import made, else made
    now (in the source's domain, by name). Each resource says created, updated, adopted,
    unchanged or conflict, and whether it changed anything. PASSWORDS: users the pack makes are
    `disabled`, or get a `random` password KEEP_SECRET stores encrypted (named in the result)."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise RefusedError("unknown kind(s) %s (known: %s)"
                           % (", ".join(unknown), ", ".join(KINDS)))
    if passwords not in keystone.PASSWORD_POLICIES:
        raise RefusedError("passwords must be one of %s" % ", ".join(keystone.PASSWORD_POLICIES))
    if passwords == "random" and keep_secret is None and not dry_run:
        raise RefusedError("random passwords need the StackStorm datastore to keep them")
    cloud = settings.cloud(DESTINATION)
    conn = conn or cloud.connect()
    given = resolve_project(conn, destination_project) if destination_project else None
    made_passwords: List[Dict[str, str]] = []
    registrar = _once(lambda: settings.cloud(IMAGE_REGISTRATION).connect())

    def carry(source_image_id: str) -> str:
        """The source image's data at the destination (Ceph), as an rbd:// location."""
        location = next(r.facts.get("location") for r in resources(doc, "image")
                        if r.source_id == source_image_id)
        if not location:
            raise RefusedError("image %s is not in Ceph at the source: the pack carries "
                               "only RBD-backed images" % source_image_id)
        copy = carry_image(settings, location)
        return "rbd://%s/%s/%s/%s" % (settings.fsid(DESTINATION), copy.pool, copy.name,
                                      GLANCE_SNAPSHOT)
    people = keystone.user_store(conn, passwords, keep_secret, made_passwords)
    results = import_all(doc, tmap, lambda kind, wanted: guarded(
        keystone.project_store(conn, given), kind),
        translator(doc, conn, given, None, passwords), kinds=["project"], adopt=adopt,
        dry_run=dry_run)
    project_id = destination_of(doc, tmap, given)
    if project_id is None and not (dry_run and results and results[0].outcome == "created"):
        raise RefusedError("no destination project: name destination_project, or import the "
                           "project (kind project) first")

    def store(kind: str, wanted: Dict[str, Any]) -> Store:
        if project_id is None and kind not in GLOBAL_KINDS:     # a dry run, project to make
            return NOTHING
        if kind == "image":
            return guarded(glance.image_store(registrar(), project_id or "", carry), kind)
        return guarded(store_for(cloud, conn, project_id or "", kind, wanted, people), kind)
    results += import_all(doc, tmap, store, translator(doc, conn, given, project_id, passwords),
                          kinds=[k for k in KINDS if k in kinds and k != "project"],
                          adopt=adopt, dry_run=dry_run)
    counts = summary(results)
    # in a dry run each result's `changed` says what the run would change
    return {"project": _project_facts(conn, project_id, given), "dry_run": dry_run,
            "changed": not dry_run and any(r.changed for r in results), "summary": counts,
            "results": [r.as_dict() for r in results], "mapping": tmap.as_dict(),
            "passwords": made_passwords, "text": _text(results, counts, dry_run)}


def _once(make: Callable[[], Any]) -> Callable[[], Any]:
    """MAKE's value, made on first use (a connection only an import with images needs)."""
    made: List[Any] = []

    def get() -> Any:
        if not made:
            made.append(make())
        return made[0]
    return get


# kinds that are not in a project: their stores work before the project exists
GLOBAL_KINDS = ("user", "group", "flavor", "keypair")
# a destination with nothing in it (a dry run's project yet to be made)
NOTHING = Store(get=lambda ident: None, tagged=lambda mark: [], named=lambda name: [],
                actual=lambda obj: {}, create=lambda wanted, mark: None,
                update=lambda obj, attrs: obj, updatable=())


def plan_tenant_migration(settings: Settings, doc: Mapping[str, Any],
                          destination_project: Optional[str], tmap: TenantMap,
                          kinds: Sequence[str] = KINDS, adopt: bool = False,
                          passwords: str = "disabled") -> Dict[str, Any]:
    """What the import would do to each resource (its dry run), whether the destination's
    quotas hold what the tenant uses, and whether there is room for what the import writes (the
    images, in the destination Glance pool; refused when they do not fit) and for the servers
    that come later (Placement's free VCPU and RAM: said, not refused). Changes nothing."""
    destination = settings.cloud(DESTINATION).connect()
    planned = import_tenant(settings, doc, destination_project, tmap, kinds, adopt,
                            dry_run=True, passwords=passwords, conn=destination)
    used = quotas.usage(settings.cloud(SOURCE).connect(), str(doc["project"]["id"]))
    project = planned["project"]
    if "quota" in kinds:
        allowed = {r.source_id: r.params for r in resources(doc, "quota")}
    elif project:
        allowed = {r.source_id: r.params
                   for r in quotas.export(destination, project["id"])}
    else:
        allowed = {}           # a project made with the destination's default quotas
    short = quotas.shortfalls(used, allowed)
    new_images = {r["source_id"] for r in planned["results"]
                  if r["kind"] == "image" and r["outcome"] == "created"}
    images = _image_room(settings, doc, new_images)
    room = placement.free(destination)
    servers = {"vcpus": used["compute"]["cores"], "ram_mb": used["compute"]["ram"],
               "free_vcpus": room["VCPU"], "free_ram_mb": room["MEMORY_MB"]}
    servers["fits"] = servers["vcpus"] <= room["VCPU"] and servers["ram_mb"] <= room["MEMORY_MB"]
    fits = not short and images["fits"]
    lines = [planned["text"]]
    lines += ["quota %s %s: the tenant uses %d, the destination would allow %d"
              % (s["service"], s["limit"], s["used"], s["allowed"]) for s in short]
    lines.append("images: %s" % images["detail"])
    lines.append("servers (later): %d vCPU and %d MiB in use at the source, %d vCPU and %d MiB "
                 "free at the destination%s" % (servers["vcpus"], servers["ram_mb"],
                                                room["VCPU"], room["MEMORY_MB"],
                                                "" if servers["fits"] else ": NOT ENOUGH"))
    return dict(planned, quotas={"used": used, "short": short},
                capacity={"images": images, "servers": servers}, fits=fits,
                text="\n".join(lines))


def _image_room(settings: Settings, doc: Mapping[str, Any], new: Any) -> Dict[str, Any]:
    """Room in the destination Glance pool for the images the import would carry (their
    allocated bytes at the source, ``rbd du``)."""
    needed = 0
    for resource in resources(doc, "image"):
        location = resource.facts.get("location")
        if resource.source_id in new and location:
            needed += written_by(settings.image(SOURCE, location["pool"], location["image"]),
                                 snapshots=True)
    pool = settings.pools.destination_glance
    if not needed:
        return {"needed_bytes": 0, "fits": True, "detail": "nothing to carry"}
    try:
        detail = require_room(settings.ceph(DESTINATION), "the destination Glance pool",
                              [pool], needed, settings.capacity_reserve)
        return {"needed_bytes": needed, "fits": True, "detail": detail}
    except RefusedError as exc:
        return {"needed_bytes": needed, "fits": False, "detail": str(exc)}


def destination_of(doc: Mapping[str, Any], tmap: TenantMap,
                   given: Optional[Mapping[str, Any]] = None) -> Optional[str]:
    """The destination project: the one named, else the mapping's counterpart of the source."""
    if given:
        return str(given["id"])
    entry = tmap.get("project", str((doc.get("project") or {}).get("id")))
    return entry.destination_id if entry else None


def _project_facts(conn: Any, project_id: Optional[str],
                   given: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    if given or project_id is None:
        return dict(given) if given else None
    return resolve_project(conn, project_id)


def compare_tenant(settings: Settings, doc: Mapping[str, Any],
                   destination_project: Optional[str], tmap: TenantMap) -> Dict[str, Any]:
    """What differs between the export and the destination, read through the mapping (and
    the source tags): the check after an import, and the tests' oracle."""
    cloud = settings.cloud(DESTINATION)
    conn = cloud.connect()
    given = resolve_project(conn, destination_project) if destination_project else None
    project_id = destination_of(doc, tmap, given)
    if project_id is None:
        raise RefusedError("no destination project: name destination_project, or import first")
    translate = translator(doc, conn, given, project_id, "random")   # (enabled: see _compared)
    differ: List[Dict[str, Any]] = []
    for kind in KINDS:
        for resource in resources(doc, kind):
            differ.extend(_compared(cloud, conn, project_id, resource, tmap, translate, given))
    return {"project": _project_facts(conn, project_id, given), "clean": not differ,
            "differences": differ}


def _compared(cloud: CloudSettings, conn: Any, project_id: str, resource: Resource,
              tmap: TenantMap, translate: Translate, given: Optional[Mapping[str, Any]]
              ) -> List[Dict[str, Any]]:
    where = {"kind": resource.kind, "source_id": resource.source_id, "name": resource.name}
    try:
        wanted = translate(resource, resolve_refs(resource, tmap), tmap)
    except RefusedError as exc:
        return [dict(where, missing=True, detail=str(exc))]
    store = guarded(keystone.project_store(conn, given) if resource.kind == "project" else
                    store_for(cloud, conn, project_id, resource.kind, wanted), resource.kind)
    entry = tmap.get(resource.kind, resource.source_id)
    found = store.get(entry.destination_id) if entry else None
    if found is None:
        tagged = store.tagged(source_tag(resource.source_id))
        found = tagged[0] if len(tagged) == 1 else None
    if found is None and store.builtin is not None:
        found = store.builtin(wanted)
    if found is None:
        return [dict(where, missing=True, detail="not at the destination")]
    if store.keep_builtin and not (entry and entry.made):
        return []           # the destination's own account, adopted as it is
    actual = store.actual(found)
    if resource.kind == "user":       # a user the pack made: the password policy set it
        actual["enabled"] = wanted.get("enabled")
    return [dict(where, missing=False, param=k, source=wanted[k], destination=actual.get(k))
            for k in differences(wanted, actual)]


def rollback_tenant(settings: Settings, tmap: TenantMap, dry_run: bool = False
                    ) -> Dict[str, Any]:
    """Delete what the pack made at the destination, dependents first; adopted resources and
    anything without the pack's tag stay. The mapping forgets what is gone."""
    conn = settings.cloud(DESTINATION).connect()
    done: List[Dict[str, Any]] = []
    for kind in reversed(KINDS):
        service = SERVICES.get(kind, neutron)
        for source_id, entry in sorted((tmap.entries.get(kind) or {}).items()):
            act = service.remove if entry.made else service.untag
            outcome = api("rolling back %s %s" % (kind, entry.destination_id),
                          lambda: act(conn, kind, entry.destination_id, source_id, dry_run))
            done.append({"kind": kind, "source_id": source_id,
                         "destination_id": entry.destination_id, "outcome": outcome})
            if not dry_run and (outcome in ("removed", "gone") or not entry.made):
                tmap.forget(kind, source_id)
    return {"dry_run": dry_run, "changed": any(d["outcome"] == "removed" for d in done),
            "results": done, "mapping": tmap.as_dict()}


NOVA_KINDS = ("flavor", "server_group", "keypair", "server")
KEYSTONE_KINDS = ("project", "user", "group", "role_assignment")
# the module that removes or untags each kind (Neutron's for the rest)
SERVICES = dict([(k, nova) for k in NOVA_KINDS] + [(k, keystone) for k in KEYSTONE_KINDS],
                quota=quotas, image=glance)


def store_for(cloud: CloudSettings, conn: Any, project_id: str, kind: str,
              wanted: Dict[str, Any], users: Optional[Store] = None) -> Store:
    """KIND's Store at the destination (its service's); USERS the one that makes users (with
    the import's password policy); the project's is keystone.project_store."""
    if kind == "user":
        return users or keystone.user_store(conn, "disabled", None, [])
    if kind == "group":
        return keystone.group_store(conn)
    if kind == "role_assignment":
        return keystone.role_assignment_store(conn, project_id)
    if kind == "keypair":
        return nova.keypair_store(conn)
    if kind == "image":         # read-only here: import_tenant makes images (carried by Ceph)
        return glance.image_store(conn, project_id, _no_carrying)
    if kind == "quota":
        return quotas.quota_store(conn, project_id, wanted["service"])
    if kind == "flavor":
        return nova.flavor_store(conn)
    if kind == "server_group":
        return nova.server_group_store(conn, lambda: cloud.connect(project_id=project_id))
    return neutron.store_for(conn, project_id, kind, wanted)


def _no_carrying(source_image_id: str) -> str:
    raise AssertionError("only import_tenant carries images")


def translator(doc: Mapping[str, Any], conn: Any, given: Optional[Mapping[str, Any]],
               destination_project: Optional[str], passwords: str) -> Translate:
    """Each service's translations of a resource's params (after its refs are resolved)."""
    source_project = str((doc.get("project") or {}).get("id"))
    destination = destination_project or "(new project from %s)" % source_project

    def projects(tmap: TenantMap) -> Dict[str, str]:
        """Source project id -> destination's: the tenant's own, unless the translation says
        otherwise, and the others it names (a flavor's or an image's other projects)."""
        return dict({source_project: destination}, **(tmap.translation.get("projects") or {}))

    def translate(resource: Resource, wanted: Dict[str, Any], tmap: TenantMap
                  ) -> Dict[str, Any]:
        if resource.kind == "quota":
            return wanted
        if resource.kind in KEYSTONE_KINDS:
            return keystone.translated(resource, wanted, tmap, given, conn, passwords)
        if resource.kind in NOVA_KINDS:
            return nova.translated(resource, wanted, projects(tmap))
        if resource.kind == "image":
            return glance.translated_members(wanted, projects(tmap))
        return neutron.translated(resource, wanted, tmap)
    return translate


def guarded(store: Store, kind: str) -> Store:
    """STORE with every call's openstacksdk errors turned into the pack's (api())."""
    def wrap(name: str, call: Any) -> Any:
        if call is None:
            return None
        return lambda *args: api("%s %s" % (name, kind), lambda: call(*args))
    calls = ("get", "tagged", "named", "actual", "create", "update", "delete", "tag")
    return dataclasses.replace(store, **{f: wrap(f, getattr(store, f)) for f in calls})


def _text(results: Sequence[Any], counts: Mapping[str, int], dry_run: bool) -> str:
    lines = ["%s: %s" % ("would" if dry_run else "done",
                         ", ".join("%d %s" % (n, o) for o, n in counts.items() if n))]
    for r in results:
        if r.outcome != "unchanged":
            detail = ": " + r.detail if r.detail else ""
            lines.append("%s %s %s (%s)%s"
                         % (r.outcome, r.kind, r.name or "", r.source_id, detail))
    return "\n".join(lines)
