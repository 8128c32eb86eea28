"""A tenant's infrastructure between the clouds: export at the source, import at the
destination, compare the two through the mapping, roll back what the import made. Flavors and
server groups (Nova), networks, subnets, routers, security groups and rules (Neutron); the rest
of the tenant joins through the same functions, a service module per kind."""
import dataclasses
import json
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .clouds import api
from .errors import RefusedError
from .keystone import resolve_project
from . import neutron, nova, quotas
from .clouds import CloudSettings
from .settings import DESTINATION, SOURCE, Settings
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
    doc = document({"id": found["id"], "name": found["name"], "domain": found["domain"]},
                   quotas.export(conn, found["id"]) + nova.export(conn, found["id"])
                   + neutron.export(conn, found["id"], external))
    counts = {kind: len((doc["resources"] or {}).get(kind) or {}) for kind in KINDS}
    return {"project": doc["project"], "document": doc, "yaml": dump(doc),
            "counts": counts, "external_networks": dict(sorted(external.items()))}


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


def save_map(write: Optional[Writer], source_project_id: str, tmap: TenantMap) -> None:
    if write is not None:
        write(MAP_KEY % source_project_id, json.dumps(tmap.as_dict(), sort_keys=True))


def import_tenant(settings: Settings, doc: Mapping[str, Any], destination_project: str,
                  tmap: TenantMap, kinds: Sequence[str] = KINDS, adopt: bool = False,
                  dry_run: bool = False) -> Dict[str, Any]:
    """Every resource of KINDS into DESTINATION_PROJECT; each says created, updated, adopted,
    unchanged or conflict, and whether it changed anything."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise RefusedError("unknown kind(s) %s (known: %s)"
                           % (", ".join(unknown), ", ".join(KINDS)))
    cloud = settings.cloud(DESTINATION)
    conn = cloud.connect()
    project = resolve_project(conn, destination_project)

    def store(kind: str, wanted: Dict[str, Any]) -> Store:
        return guarded(store_for(cloud, conn, project["id"], kind, wanted), kind)
    results = import_all(doc, tmap, store, translator(doc, project["id"]),
                         kinds=[k for k in KINDS if k in kinds], adopt=adopt, dry_run=dry_run)
    counts = summary(results)
    # in a dry run each result's `changed` says what the run would change
    return {"project": project, "dry_run": dry_run,
            "changed": not dry_run and any(r.changed for r in results), "summary": counts,
            "results": [r.as_dict() for r in results], "mapping": tmap.as_dict(),
            "text": _text(results, counts, dry_run)}


def compare_tenant(settings: Settings, doc: Mapping[str, Any], destination_project: str,
                   tmap: TenantMap) -> Dict[str, Any]:
    """What differs between the export and the destination, read through the mapping (and
    the source tags): the check after an import, and the tests' oracle."""
    cloud = settings.cloud(DESTINATION)
    conn = cloud.connect()
    project = resolve_project(conn, destination_project)
    translate = translator(doc, project["id"])
    differ: List[Dict[str, Any]] = []
    for kind in KINDS:
        for resource in resources(doc, kind):
            differ.extend(_compared(cloud, conn, project["id"], resource, tmap, translate))
    return {"project": project, "clean": not differ, "differences": differ}


def _compared(cloud: CloudSettings, conn: Any, project_id: str, resource: Resource,
              tmap: TenantMap, translate: Translate) -> List[Dict[str, Any]]:
    where = {"kind": resource.kind, "source_id": resource.source_id, "name": resource.name}
    try:
        wanted = translate(resource, resolve_refs(resource, tmap), tmap)
    except RefusedError as exc:
        return [dict(where, missing=True, detail=str(exc))]
    store = guarded(store_for(cloud, conn, project_id, resource.kind, wanted), resource.kind)
    entry = tmap.get(resource.kind, resource.source_id)
    found = store.get(entry.destination_id) if entry else None
    if found is None:
        tagged = store.tagged(source_tag(resource.source_id))
        found = tagged[0] if len(tagged) == 1 else None
    if found is None:
        return [dict(where, missing=True, detail="not at the destination")]
    actual = store.actual(found)
    return [dict(where, missing=False, param=k, source=wanted[k], destination=actual.get(k))
            for k in differences(wanted, actual)]


def rollback_tenant(settings: Settings, tmap: TenantMap, dry_run: bool = False
                    ) -> Dict[str, Any]:
    """Delete what the pack made at the destination, dependents first; adopted resources and
    anything without the pack's tag stay. The mapping forgets what is gone."""
    conn = settings.cloud(DESTINATION).connect()
    done: List[Dict[str, Any]] = []
    for kind in reversed(KINDS):
        service = {"quota": quotas}.get(kind) or (nova if kind in NOVA_KINDS else neutron)
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


NOVA_KINDS = ("flavor", "server_group")


def store_for(cloud: CloudSettings, conn: Any, project_id: str, kind: str,
              wanted: Dict[str, Any]) -> Store:
    """KIND's Store at the destination (its service's)."""
    if kind == "quota":
        return quotas.quota_store(conn, project_id, wanted["service"])
    if kind == "flavor":
        return nova.flavor_store(conn)
    if kind == "server_group":
        return nova.server_group_store(conn, lambda: cloud.connect(project_id=project_id))
    return neutron.store_for(conn, project_id, kind, wanted)


def translator(doc: Mapping[str, Any], destination_project: str) -> Translate:
    """Each service's translations of a resource's params (after its refs are resolved)."""
    source_project = str((doc.get("project") or {}).get("id"))

    def translate(resource: Resource, wanted: Dict[str, Any], tmap: TenantMap
                  ) -> Dict[str, Any]:
        if resource.kind == "quota":
            return wanted
        if resource.kind in NOVA_KINDS:
            return nova.translated(resource, wanted, tmap, source_project, destination_project)
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
