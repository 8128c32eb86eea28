"""A tenant's resources as data: the export document, the mapping from source ids to
destination ids, and the one rule every importer follows to find, adopt, create or update.

Identity is never a name. A resource is found through the mapping, else by the source id the
pack tagged it with when it made it, else (only when asked) adopted by name if it is equal, else
created. So duplicate names work, a resource renamed at the destination is found again, and an
ERROR leftover of the pack's own is replaced. What the source says is applied only when the
source changed since the last import (the mapping keeps a fingerprint of what was applied): a
re-run of an unchanged tenant writes nothing, and a change made at the destination by someone
is reported, not overwritten.
"""
import hashlib
import json
from dataclasses import dataclass, field
from typing import (Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set,
                    Tuple)

from .errors import CephMigrateError, ConfigError, RefusedError
from .names import SOURCE_ID_KEY

DOCUMENT_VERSION = 1
# import order: what a resource refers to comes before it
KINDS = ("project", "user", "group", "role_assignment", "keypair", "quota", "flavor", "image",
         "network", "subnet", "router", "security_group", "security_group_rule", "server_group",
         "port", "floating_ip", "server")
OUTCOMES = ("created", "updated", "adopted", "unchanged", "conflict")
# the editable translation section of a mapping: source value -> destination value
TRANSLATIONS = ("projects", "external_networks", "physnets", "flavors", "volume_types",
                "availability_zones")


def source_tag(source_id: str) -> str:
    """The tag (Neutron, Nova, Keystone) that names the source a created resource came from."""
    return "%s=%s" % (SOURCE_ID_KEY, source_id)


def user_tags(obj: Any) -> List[str]:
    """OBJ's tags without the pack's own source tag (it names the resource at one cloud only)."""
    return sorted(t for t in (obj.tags or []) if not t.startswith(source_tag("")))


def fingerprint(params: Mapping[str, Any]) -> str:
    """A short digest of parameters, independent of key order."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Resource:
    """One exported resource: what to apply at the destination (``params``, with source ids
    where it refers to other resources, named in ``refs``) and what is only recorded."""
    kind: str
    source_id: str
    params: Dict[str, Any]
    facts: Dict[str, Any] = field(default_factory=dict)
    # a key of params -> the kind of resource its source id (or list of ids) refers to
    refs: Dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> Optional[str]:
        """Its name, or the label export gave a resource that has none (a rule)."""
        return self.params.get("name") or self.facts.get("label")

    def as_dict(self) -> Dict[str, Any]:
        doc: Dict[str, Any] = {"params": self.params, "facts": self.facts}
        if self.refs:
            doc["refs"] = self.refs
        return doc

    @classmethod
    def from_dict(cls, kind: str, source_id: str, doc: Mapping[str, Any]) -> "Resource":
        if not isinstance(doc, Mapping) or not isinstance(doc.get("params"), Mapping):
            raise ConfigError("%s %s in the export has no params" % (kind, source_id))
        return cls(kind, source_id, dict(doc["params"]), dict(doc.get("facts") or {}),
                   dict(doc.get("refs") or {}))


def document(project: Mapping[str, Any], resources: Iterable[Resource]) -> Dict[str, Any]:
    """The export: the project and, per kind, its resources keyed by source id."""
    by_kind: Dict[str, Dict[str, Any]] = {}
    for resource in resources:
        by_kind.setdefault(resource.kind, {})[resource.source_id] = resource.as_dict()
    return {"version": DOCUMENT_VERSION, "project": dict(project), "resources": by_kind}


def dump(doc: Mapping[str, Any]) -> str:
    """Stable YAML text: sorted keys, block style, so an unchanged tenant exports the same
    bytes."""
    import yaml

    return yaml.safe_dump(json.loads(json.dumps(doc, default=str)), sort_keys=True,
                          default_flow_style=False, allow_unicode=True, width=100)


def load(text: str) -> Dict[str, Any]:
    import yaml

    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or doc.get("version") != DOCUMENT_VERSION:
        raise ConfigError("not a ceph_migrate tenant export (version %s expected)"
                          % DOCUMENT_VERSION)
    return doc


def resources(doc: Mapping[str, Any], kind: str) -> List[Resource]:
    """The export's resources of KIND, in a stable order (by name, then source id)."""
    found = [Resource.from_dict(kind, sid, body)
             for sid, body in ((doc.get("resources") or {}).get(kind) or {}).items()]
    return sorted(found, key=lambda r: (str(r.name or ""), r.source_id))


# --------------------------------------------------------------------------- the mapping

@dataclass
class Entry:
    destination_id: str
    outcome: str
    fingerprint: str        # of the params last applied (translated)
    made: bool = False      # the pack created it (what a rollback may delete)


@dataclass
class TenantMap:
    """Source id -> destination id per kind, and the operator's translations. Kept where
    tenants cannot write (the StackStorm datastore), exportable as a file."""
    entries: Dict[str, Dict[str, Entry]] = field(default_factory=dict)
    translation: Dict[str, Dict[str, str]] = field(default_factory=dict)
    # (kind, source id) this run recorded or forgot: what it saves over what others saved
    touched: Set[Tuple[str, str]] = field(default_factory=set, compare=False, repr=False)

    def get(self, kind: str, source_id: str) -> Optional[Entry]:
        return self.entries.get(kind, {}).get(source_id)

    def record(self, kind: str, source_id: str, entry: Entry) -> None:
        """Keep ENTRY; a resource the pack made stays made through later re-runs."""
        before = self.get(kind, source_id)
        if before is not None and before.made and before.destination_id == entry.destination_id:
            entry.made = True
        self.entries.setdefault(kind, {})[source_id] = entry
        self.touched.add((kind, source_id))

    def forget(self, kind: str, source_id: str) -> None:
        self.entries.get(kind, {}).pop(source_id, None)
        self.touched.add((kind, source_id))

    def merged_into(self, stored: "TenantMap") -> "TenantMap":
        """STORED (the mapping as saved now) with what this run recorded or forgot, and this
        run's translations: servers of one tenant migrate side by side, each saving its own
        entries without undoing the others'."""
        for kind, source_id in sorted(self.touched):
            entry = self.get(kind, source_id)
            if entry is None:
                stored.entries.get(kind, {}).pop(source_id, None)
            else:
                stored.entries.setdefault(kind, {})[source_id] = entry
        stored.translation = self.translation
        return stored

    def destination(self, kind: str, source_id: str) -> str:
        """The destination id of a resource imported before: refs are resolved with it."""
        entry = self.get(kind, source_id)
        if entry is None:
            raise RefusedError("%s %s is not at the destination yet (import it first)"
                               % (kind, source_id))
        return entry.destination_id

    def translate(self, section: str, value: Optional[str]) -> Optional[str]:
        """VALUE through the translation SECTION (unchanged when it has no entry)."""
        if value is None:
            return None
        return (self.translation.get(section) or {}).get(value, value)

    def as_dict(self) -> Dict[str, Any]:
        return {"translation": {k: dict(sorted((self.translation.get(k) or {}).items()))
                                for k in TRANSLATIONS},
                "entries": {kind: {sid: {"destination_id": e.destination_id,
                                         "outcome": e.outcome, "fingerprint": e.fingerprint,
                                         "made": e.made}
                                   for sid, e in sorted(by_id.items())}
                            for kind, by_id in sorted(self.entries.items())}}

    @classmethod
    def from_dict(cls, doc: Optional[Mapping[str, Any]]) -> "TenantMap":
        doc = doc or {}
        translation = doc.get("translation") or {}
        unknown = sorted(set(translation) - set(TRANSLATIONS))
        if unknown:
            raise ConfigError("unknown translation section(s) %s (known: %s)"
                              % (", ".join(unknown), ", ".join(TRANSLATIONS)))
        entries = {kind: {sid: Entry(str(e["destination_id"]), str(e["outcome"]),
                                     str(e.get("fingerprint", "")), bool(e.get("made")))
                          for sid, e in (by_id or {}).items()}
                   for kind, by_id in (doc.get("entries") or {}).items()}
        return cls(entries, {k: {str(a): str(b) for a, b in (v or {}).items()}
                             for k, v in translation.items()})


# --------------------------------------------------------------------------- reconciling

@dataclass(frozen=True)
class Result:
    kind: str
    source_id: str
    name: Optional[str]
    outcome: str
    destination_id: Optional[str]
    changed: bool
    detail: str = ""

    def as_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "source_id": self.source_id, "name": self.name,
                "outcome": self.outcome, "destination_id": self.destination_id,
                "changed": self.changed, "detail": self.detail}


@dataclass(frozen=True)
class Store:
    """How one kind is found, compared, made and changed at the destination (per service).

    ``get`` returns None for an id that is gone; ``tagged`` the resources carrying a source
    tag; ``named`` those of a name (adoption); ``actual`` the comparable params of a found
    resource; ``failed`` says it is an ERROR leftover; ``create``/``update``/``delete`` act;
    ``updatable`` names the params an update can change (others differing is a conflict)."""
    get: Callable[[str], Optional[Any]]
    tagged: Callable[[str], List[Any]]
    named: Callable[[str], List[Any]]
    actual: Callable[[Any], Dict[str, Any]]
    create: Callable[[Dict[str, Any], str], Any]
    update: Callable[[Any, Dict[str, Any]], Any]
    updatable: Tuple[str, ...]
    ident: Callable[[Any], str] = lambda obj: obj.id
    failed: Callable[[Any], bool] = lambda obj: False
    delete: Optional[Callable[[Any], None]] = None
    tag: Optional[Callable[[Any, str], None]] = None
    # a destination resource that exists by construction (a project's default security
    # group): adopted whatever it holds, then brought to what the source says
    builtin: Optional[Callable[[Dict[str, Any]], Optional[Any]]] = None
    # a builtin is kept as it is, never changed or marked (a user account of that name: a
    # person, whose name Keystone keeps unique in a domain)
    keep_builtin: bool = False


def differences(wanted: Mapping[str, Any], actual: Mapping[str, Any]) -> List[str]:
    """Params whose wanted value the destination does not have (lists compared as sets of
    their JSON, the APIs reorder them)."""
    def norm(value: Any) -> Any:
        if isinstance(value, list):
            return sorted(json.dumps(v, sort_keys=True) for v in value)
        return value
    return sorted(k for k, v in wanted.items() if norm(v) != norm(actual.get(k)))


def reconcile(kind: str, source_id: str, wanted: Dict[str, Any], store: Store, tmap: TenantMap,
              adopt: bool = False, dry_run: bool = False, label: Optional[str] = None) -> Result:
    """Bring one resource to the destination; records the outcome in TMAP (not in a dry run).
    WANTED are the translated params (refs already destination ids); LABEL names it in the
    result when it has no name."""
    name = wanted.get("name") or label
    print_ = fingerprint(wanted)
    entry = tmap.get(kind, source_id)
    found = store.get(entry.destination_id) if entry else None
    how = "mapping"
    if found is None:
        tagged = store.tagged(source_tag(source_id))
        if len(tagged) > 1:
            return Result(kind, source_id, name, "conflict", None, False,
                          "%d resources carry the tag %s: remove the extra ones"
                          % (len(tagged), source_tag(source_id)))
        found, how = (tagged[0], "tag") if tagged else (None, "")
    if found is not None and store.failed(found):
        if store.delete is None:
            return Result(kind, source_id, name, "conflict", store.ident(found), False,
                          "the pack's earlier %s is in ERROR" % kind)
        if not dry_run:
            store.delete(found)
        found = None
        how = "replaced"
    if found is not None and store.keep_builtin and entry is not None and \
            entry.outcome == "adopted" and not entry.made:
        return _recorded(tmap, dry_run, Result(kind, source_id, name, "unchanged",
                                               store.ident(found), False,
                                               "the destination's own, kept as it is"), print_)
    if found is None and store.builtin is not None and not (dry_run and _refers_to_new(wanted)):
        found = store.builtin(wanted)
        if found is not None and store.keep_builtin:
            return _recorded(tmap, dry_run, Result(
                kind, source_id, name, "adopted", store.ident(found), False,
                "the destination's own (same name), kept as it is"), print_)
        if found is not None:
            how = "builtin"
            if not dry_run and store.tag is not None:
                store.tag(found, source_tag(source_id))
    if found is None and adopt and wanted.get("name"):
        candidates = [c for c in store.named(wanted["name"])
                      if not differences(wanted, store.actual(c))]
        if len(candidates) == 1:
            if not dry_run and store.tag is not None:
                store.tag(candidates[0], source_tag(source_id))
            return _recorded(tmap, dry_run, Result(kind, source_id, name, "adopted",
                                                   store.ident(candidates[0]), store.tag
                                                   is not None, "equal, by name"), print_)
    if found is None:
        made = None if dry_run else store.create(wanted, source_tag(source_id))
        return _recorded(tmap, dry_run, Result(
            kind, source_id, name, "created", store.ident(made) if made is not None else None,
            True, "replacing an ERROR leftover" if how == "replaced" else ""), print_)
    ident = store.ident(found)
    differ = differences(wanted, store.actual(found))
    if how == "builtin" and not differ:
        return _recorded(tmap, dry_run, Result(kind, source_id, name, "adopted", ident,
                                               store.tag is not None, "the destination's own"),
                         print_)
    if not differ:
        return _recorded(tmap, dry_run, Result(kind, source_id, name, "unchanged", ident, False,
                                               "found by %s" % how), print_)
    if entry is not None and entry.fingerprint == print_:
        # the source did not change since the pack applied it: the destination did; kept
        return _recorded(tmap, dry_run, Result(
            kind, source_id, name, "unchanged", ident, False,
            "changed at the destination since the last import, kept: %s" % ", ".join(differ)),
            print_)
    fixed = [k for k in differ if k not in store.updatable]
    if fixed:
        return Result(kind, source_id, name, "conflict", ident, False,
                      "differs in %s, which cannot be changed in place" % ", ".join(fixed))
    if not dry_run:
        store.update(found, {k: wanted[k] for k in differ})
    return _recorded(tmap, dry_run, Result(kind, source_id, name, "updated", ident, True,
                                           "set %s" % ", ".join(differ)), print_)


def _refers_to_new(wanted: Mapping[str, Any]) -> bool:
    """A dry run's params naming a resource not made yet (resolve_refs' placeholder): nothing
    at the destination can be it."""
    values = [v for value in wanted.values()
              for v in (value if isinstance(value, list) else [value])]
    return any(isinstance(v, str) and v.startswith(NEW) for v in values)


def _recorded(tmap: TenantMap, dry_run: bool, result: Result, print_: str) -> Result:
    """RESULT recorded in TMAP once its destination is known. A dry run records what it found
    too (its map is never saved): what refers to it then resolves to it, as the import will,
    also when the mapping was lost and the pack's tags found what an earlier run made."""
    if result.destination_id:
        tmap.record(result.kind, result.source_id, Entry(
            result.destination_id, result.outcome, print_, made=result.outcome == "created"))
    return result


def resolve_refs(resource: Resource, tmap: TenantMap, dry_run: bool = False) -> Dict[str, Any]:
    """RESOURCE's params with every source id it refers to replaced by its destination id (in a
    dry run, one not imported yet by a placeholder that names it)."""
    params = dict(resource.params)
    for key, kind in resource.refs.items():
        value = params.get(key)
        if isinstance(value, list):
            params[key] = [_resolved(tmap, kind, v, dry_run) for v in value]
        elif value is not None:
            params[key] = _resolved(tmap, kind, value, dry_run)
    return params


def _resolved(tmap: TenantMap, kind: str, value: Any, dry_run: bool) -> Any:
    if isinstance(value, dict):      # e.g. a router interface: {"subnet_id": ..., ...}
        ref = "%s_id" % kind
        return dict(value, **{ref: _resolved(tmap, kind, value[ref], dry_run)})
    if dry_run and tmap.get(kind, str(value)) is None:
        return "%s%s from %s)" % (NEW, kind, value)
    return tmap.destination(kind, str(value))


NEW = "(new "     # a dry run's placeholder for a resource not made yet: "(new <kind> from <id>)"
Translate = Callable[[Resource, Dict[str, Any], TenantMap], Dict[str, Any]]
StoreFor = Callable[[str, Dict[str, Any]], Store]


def import_all(doc: Mapping[str, Any], tmap: TenantMap, store_for: StoreFor,
               translate: Translate, kinds: Sequence[str] = KINDS, adopt: bool = False,
               dry_run: bool = False) -> List[Result]:
    """Every resource of KINDS in the export, in dependency order; one that cannot be brought
    (a ref or a translation missing, a conflict) is reported and the rest go on."""
    results: List[Result] = []
    for kind in kinds:
        for resource in resources(doc, kind):
            try:
                wanted = translate(resource, resolve_refs(resource, tmap, dry_run), tmap)
            except RefusedError as exc:
                results.append(Result(kind, resource.source_id, resource.name, "conflict",
                                      None, False, str(exc)))
                continue
            try:
                results.append(reconcile(kind, resource.source_id, wanted,
                                         store_for(kind, wanted), tmap, adopt, dry_run,
                                         label=resource.name))
            except CephMigrateError as exc:    # an API refused: said, and the rest goes on
                results.append(Result(kind, resource.source_id, resource.name, "conflict",
                                      None, False, str(exc)))
    return results


def summary(results: Iterable[Result]) -> Dict[str, int]:
    counts = {outcome: 0 for outcome in OUTCOMES}
    for result in results:
        counts[result.outcome] += 1
    return counts
