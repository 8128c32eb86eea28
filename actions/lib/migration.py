"""One migration as its plan settled it: the procedure, the source volume as the plan described
it, the destination project it resolved, and the pools and images on both sides.

The plan builds it once and returns it under ``migration``; a workflow passes it on to the
steps that would otherwise look the volume and the project up again. It crosses StackStorm as
a plain mapping, so what comes back is validated before a step trusts it.
"""
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Mapping, Optional

from . import names
from .errors import RefusedError

PROCEDURES = ("data", "boot")

# what the steps read of the described volume (describe_volume returns more)
_VOLUME_KEYS = ("id", "name", "description", "status", "bootable", "attached_to", "size_gib",
                "volume_type", "encrypted", "metadata", "project_id", "project_name",
                "project_domain")
_NAME_OR_NONE = {"type": ["string", "null"], "pattern": names.RBD_NAME_PATTERN}
SCHEMA: Dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["procedure", "volume_id", "volume", "destination_project", "mode",
                 "mirrored_pool", "destination_pool", "image", "destination_image"],
    "properties": {
        "procedure": {"enum": list(PROCEDURES)},
        "volume_id": {"type": "string", "pattern": names.UUID_PATTERN},
        "volume": {"type": ["object", "null"], "required": list(_VOLUME_KEYS),
                   "properties": {"id": {"type": "string", "pattern": names.UUID_PATTERN},
                                  "project_id": {"type": "string"},
                                  "metadata": {"type": "object"},
                                  "attached_to": {"type": "array"}}},
        "destination_project": {"type": ["object", "null"], "required": ["id", "name"],
                                "properties": {"id": {"type": "string", "minLength": 1},
                                               "name": {"type": "string"},
                                               "domain": {"type": ["string", "null"]}}},
        "mode": {"enum": list(names.MIRROR_MODES)},
        "mirrored_pool": {"type": "string", "pattern": names.POOL_PATTERN},
        "destination_pool": {"type": "string", "pattern": names.POOL_PATTERN},
        "image": _NAME_OR_NONE,
        "destination_image": _NAME_OR_NONE,
        "method": {"enum": list(names.COPY_METHODS)},
        "placement": {"enum": list(names.PLACEMENTS)},
    },
}


@dataclass(frozen=True)
class Migration:
    procedure: str                                   # "data" or "boot"
    volume_id: str
    volume: Optional[Dict[str, Any]]                 # describe_volume's; None without clouds
    destination_project: Optional[Dict[str, Any]]    # {id, name, domain}; None without clouds
    mode: str                                        # how the mirrored pool replicates
    mirrored_pool: str
    destination_pool: str
    image: Optional[str]                 # the mirrored image; boot: unknown until the upload
    destination_image: Optional[str]     # the copy's name; boot: unknown until the upload
    method: str = "mirror"               # names.COPY_METHODS (data); boot: always mirror
    placement: str = "copy"              # names.PLACEMENTS: promote = the replica in place

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "Migration":
        """The value a plan returned, checked: a workflow may hand over anything."""
        import jsonschema

        error = jsonschema.exceptions.best_match(
            jsonschema.Draft7Validator(SCHEMA).iter_errors(data))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path)
            raise RefusedError("migration is not a plan's migration value: %s%s"
                               % (where + ": " if where else "", error.message))
        if data["volume"] is not None and data["volume"]["id"] != data["volume_id"]:
            raise RefusedError("migration describes volume %s, not its volume_id %s"
                               % (data["volume"]["id"], data["volume_id"]))
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def of_volume(self, volume_id: Optional[str]) -> "Migration":
        """This value, once it is about ``volume_id`` (a step given both must not mix two
        migrations)."""
        if volume_id is not None and names.volume_id(volume_id) != self.volume_id:
            raise RefusedError("the migration value is about volume %s, not %s: pass the "
                               "plan of this volume" % (self.volume_id, volume_id))
        return self

    def project(self, given: Optional[str] = None) -> Optional[Dict[str, Any]]:
        """The destination project the plan resolved (None when it resolved none); a
        ``given`` project that is not that one (by id or name) is refused."""
        project = self.destination_project
        if project is not None and given and given not in (project["id"], project["name"]):
            raise RefusedError("destination_project %r is not the project the plan resolved "
                               "(%s, %s)" % (given, project["name"], project["id"]))
        return project


def carried(data: Optional[Mapping[str, Any]], volume_id: Optional[str]) -> Optional[Migration]:
    """An action's optional ``migration`` parameter, validated and about ``volume_id``."""
    if not data:
        return None
    return Migration.from_dict(data).of_volume(volume_id)
