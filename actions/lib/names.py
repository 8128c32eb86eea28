"""Validation of every name that reaches an rbd command line, and the names the pack and
Cinder give things (so each is spelled in one place).

Stricter than Ceph on purpose: only letters, digits, ``_``, ``.`` and ``-``, starting with a
letter or digit (so nothing reads as an option), no ``..``, no ``/`` or ``@`` (they are the
pool/image/snapshot separators) and nothing a shell or a path could interpret.
"""
import os
import re
import uuid
from typing import Optional

from .errors import InvalidName

# what the pack tags everything it creates in a cloud with (volume metadata, image property),
# valued with the source's id: how a re-run finds its earlier work instead of duplicating it
SOURCE_ID_KEY = "ceph_migrate_source_id"
CINDER_IMAGE_PREFIX = "volume-"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_CLUSTER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")

# The ``pattern`` of every identifier parameter in the action and workflow metadata, by
# parameter name: StackStorm refuses a value that does not match before anything runs, so text
# typed in chat (an Orquesta or Jinja expression, a path, an option) never reaches a workflow.
# The rbd names are the validators below as regular expressions; the tests hold every action's
# metadata to this table.
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
RBD_NAME_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$"
POOL_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
EXECUTION_ID_PATTERN = r"^[0-9a-f]{24}$"
KEYSTONE_ID_PATTERN = r"^[0-9a-f]{32}$"
# Keystone project names and ids, volume types: letters, digits and a few separators
PROJECT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.@+-]{0,63}$"
# Cinder volume and Glance image names: any text without expression delimiters or controls
DISPLAY_NAME_PATTERN = r"^[^<>{}%\x00-\x1f]{1,255}$"
PARAMETER_PATTERNS = {
    "volume_id": UUID_PATTERN, "volumes": UUID_PATTERN, "image_id": UUID_PATTERN,
    "source_id": UUID_PATTERN, "source_image_id": UUID_PATTERN,
    "source_volume_id": UUID_PATTERN, "server_id": UUID_PATTERN,
    "image": RBD_NAME_PATTERN, "destination_image": RBD_NAME_PATTERN,
    "copy_image": RBD_NAME_PATTERN, "snapshot": RBD_NAME_PATTERN,
    "source_image": RBD_NAME_PATTERN, "source_pool": POOL_PATTERN,
    "pool": POOL_PATTERN, "destination_pool": POOL_PATTERN, "copy_pool": POOL_PATTERN,
    "inquiry_id": EXECUTION_ID_PATTERN, "batch_id": EXECUTION_ID_PATTERN,
    "destination_project": PROJECT_PATTERN, "volume_type": PROJECT_PATTERN,
    "project": PROJECT_PATTERN, "source_project_id": KEYSTONE_ID_PATTERN,
    "name": DISPLAY_NAME_PATTERN, "image_name": DISPLAY_NAME_PATTERN,
}

IMAGE_FEATURES = ("layering", "exclusive-lock", "object-map", "fast-diff", "deep-flatten",
                  "journaling")
MIRROR_MODES = ("snapshot", "journal")
# how a data volume's image crosses: rbd-mirror then a copy after the cutover (the runbook),
# or rounds of export-diff | import-diff before it and only the last delta inside it
COPY_METHODS = ("mirror", "export_diff")
# where the destination volume's data lands (mirror method): a copy in the destination Cinder
# pool, or the replica itself, promoted, in the mirrored pool (no copy at all)
PLACEMENTS = ("copy", "promote")


def _check(kind: str, value: object, pattern: "re.Pattern[str]", max_len: int) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidName("%s must be a non-empty string, got %r" % (kind, value))
    if len(value) > max_len:
        raise InvalidName("%s %r is longer than %d characters" % (kind, value, max_len))
    if ".." in value or not pattern.fullmatch(value):
        raise InvalidName(
            "%s %r is not allowed: use letters, digits, '_', '.' and '-', start with a letter or"
            " a digit, no '..'" % (kind, value))
    return value


def pool_name(value: object) -> str:
    return _check("pool name", value, _NAME, 100)


def image_name(value: object) -> str:
    return _check("image name", value, _NAME, 200)


def snapshot_name(value: object) -> str:
    return _check("snapshot name", value, _NAME, 200)


def cluster_name(value: object) -> str:
    return _check("cluster name", value, _CLUSTER, 64)


def client_id(value: object) -> str:
    """A cephx user without the ``client.`` prefix (what ``rbd --id`` takes)."""
    if isinstance(value, str) and value.startswith("client."):
        raise InvalidName("client id %r must not include the 'client.' prefix" % value)
    return _check("client id", value, _NAME, 100)


def volume_id(value: object) -> str:
    """A Cinder volume (or Glance image) UUID, returned in canonical lower-case form."""
    return _uuid("volume", value)


def server_id(value: object) -> str:
    """A Nova server UUID, in canonical lower-case form."""
    return _uuid("server", value)


def _uuid(kind: str, value: object) -> str:
    try:
        canonical = str(uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError):
        raise InvalidName("%r is not a %s id (a UUID like "
                          "0b0f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d10)" % (value, kind)) from None
    if canonical != str(value).lower():
        raise InvalidName("%r is not a %s id in canonical form (%s)" % (value, kind, canonical))
    return canonical


def cinder_image(volume_id: str) -> str:
    """The RBD image Cinder's RBD driver keeps volume ``volume_id`` in."""
    return CINDER_IMAGE_PREFIX + volume_id


def file_path(kind: str, value: object) -> str:
    """An absolute path without control characters (conf and keyring files)."""
    if (not isinstance(value, str) or not os.path.isabs(value)
            or any(ord(c) < 32 for c in value)):
        raise InvalidName("%s must be an absolute path, got %r" % (kind, value))
    return value


def image_feature(value: object) -> str:
    if value not in IMAGE_FEATURES:
        raise InvalidName("unknown image feature %r (known: %s)"
                          % (value, ", ".join(IMAGE_FEATURES)))
    return str(value)


def mirror_mode(value: object) -> str:
    if value not in MIRROR_MODES:
        raise InvalidName("mirror mode must be one of %s, got %r"
                          % (", ".join(MIRROR_MODES), value))
    return str(value)


def copy_method(value: object) -> str:
    if value not in COPY_METHODS:
        raise InvalidName("copy method must be one of %s, got %r"
                          % (", ".join(COPY_METHODS), value))
    return str(value)


def volume_type(value: object) -> str:
    if not isinstance(value, str) or not re.match(PROJECT_PATTERN, value):
        raise InvalidName("volume type %r is not allowed: letters, digits, ' ', '_', '.', '@', "
                          "'+' and '-', at most 64" % (value,))
    return value


def placement(value: object) -> str:
    if value not in PLACEMENTS:
        raise InvalidName("placement must be one of %s, got %r" % (", ".join(PLACEMENTS), value))
    return str(value)


def image_spec(pool: str, image: str, snapshot: Optional[str] = None) -> str:
    """``pool/image[@snap]`` from validated parts (the only way specs are built)."""
    spec = "%s/%s" % (pool_name(pool), image_name(image))
    return spec + ("@" + snapshot_name(snapshot) if snapshot is not None else "")
