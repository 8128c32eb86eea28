"""OpenStack notifications into the pack's triggers: oslo.messaging envelopes decoded, Glance
image and Cinder volume events of the resources under migration (those carrying the
``ceph_migrate_source_id`` mark the pack sets) turned into ``image_status`` / ``volume_status``
payloads. Also the polling fallback's view of the same resources, so both paths report alike."""
import json
from typing import Any, Dict, Iterable, List, Optional, Tuple

from .names import SOURCE_ID_KEY

IMAGE_STATUS, VOLUME_STATUS = "image_status", "volume_status"
IMAGE_EVENTS = ("image.activate", "image.update", "image.delete", "image.upload",
                "image.create")
Trigger = Tuple[str, Dict[str, Any]]


class MalformedMessage(ValueError):
    """A body that is not an OpenStack notification (logged and dropped, never requeued)."""


def decode(body: Any) -> Dict[str, Any]:
    """The notification inside an AMQP body: oslo.messaging v2 wraps it as a JSON string under
    ``oslo.message``; v1 bodies are the notification itself."""
    try:
        message = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
        if isinstance(message, dict) and "oslo.message" in message:
            message = json.loads(message["oslo.message"])
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise MalformedMessage("not JSON: %s" % exc) from None
    if not isinstance(message, dict) or not isinstance(message.get("event_type"), str):
        raise MalformedMessage("no event_type in %s" % str(message)[:200])
    return message


def to_trigger(cloud: str, message: Dict[str, Any]) -> Optional[Trigger]:
    """The trigger for one notification, or None when it is not about a marked resource (or
    not an event the pack reports)."""
    event_type = message["event_type"]
    payload = message.get("payload")
    error = None
    if str(message.get("priority", "")).upper() == "ERROR" and not isinstance(payload, dict):
        error, payload = str(payload), {}
    if not isinstance(payload, dict):
        return None
    if event_type.startswith("image.") and event_type in IMAGE_EVENTS:
        if event_type == "image.update" and "status" not in payload:
            return None
        if event_type == "image.upload" and str(message.get("priority", "")).upper() != "ERROR":
            return None                    # success shows as image.activate
        return _image(cloud, event_type, payload, error)
    if event_type.startswith("volume.") and (event_type.endswith(".end") or
                                             event_type.endswith(".error")):
        return _volume(cloud, event_type, payload, error)
    return None


def _image(cloud: str, event_type: str, payload: Dict[str, Any],
           error: Optional[str]) -> Optional[Trigger]:
    source_id = (payload.get("properties") or {}).get(SOURCE_ID_KEY) or payload.get(SOURCE_ID_KEY)
    if not source_id:
        return None
    return IMAGE_STATUS, image_payload(cloud, event_type, payload.get("id"), payload.get("name"),
                                       payload.get("status"), payload.get("owner"), source_id,
                                       error)


def _volume(cloud: str, event_type: str, payload: Dict[str, Any],
            error: Optional[str]) -> Optional[Trigger]:
    source_id = _metadata(payload.get("metadata")).get(SOURCE_ID_KEY)
    if not source_id:
        return None
    if event_type.endswith(".error"):
        error = error or str(payload.get("message") or payload.get("status") or "error")
    return VOLUME_STATUS, volume_payload(
        cloud, event_type, payload.get("volume_id") or payload.get("id"),
        payload.get("display_name") or payload.get("name"), payload.get("status"),
        payload.get("tenant_id") or payload.get("project_id"), payload.get("size"), source_id,
        error)


def _metadata(value: Any) -> Dict[str, Any]:
    """Cinder sends volume metadata as a mapping or as a list of {key, value} rows."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {row["key"]: row.get("value") for row in value
                if isinstance(row, dict) and row.get("key") is not None}
    return {}


def image_payload(cloud: str, event_type: str, image_id: Any, name: Any, status: Any,
                  owner: Any, source_id: Any, error: Optional[str] = None) -> Dict[str, Any]:
    return {"cloud": cloud, "event_type": event_type, "image_id": _str(image_id),
            "name": _str(name), "status": _str(status), "owner": _str(owner),
            "source_id": _str(source_id), "error": error}


def volume_payload(cloud: str, event_type: str, volume_id: Any, name: Any, status: Any,
                   project_id: Any, size_gib: Any, source_id: Any,
                   error: Optional[str] = None) -> Dict[str, Any]:
    return {"cloud": cloud, "event_type": event_type, "volume_id": _str(volume_id),
            "name": _str(name), "status": _str(status), "project_id": _str(project_id),
            "size_gib": int(size_gib) if isinstance(size_gib, (int, float)) else None,
            "source_id": _str(source_id), "error": error}


def _str(value: Any) -> Optional[str]:
    return None if value is None else str(value)


class StatusBook:
    """The last payload reported per resource, from events and from polls: the polling
    fallback reports only what changed since (a resource gone from the API as ``deleted``), so
    nothing is reported twice or missed."""

    def __init__(self) -> None:
        self.known: Dict[Tuple[str, str, str], Dict[str, Any]] = {}

    def saw(self, trigger: str, payload: Dict[str, Any]) -> None:
        key = _key(trigger, payload)
        if payload.get("status") == "deleted":
            self.known.pop(key, None)
        else:
            self.known[key] = payload

    def baseline(self, polled: Iterable[Trigger]) -> None:
        for trigger, payload in polled:
            self.saw(trigger, payload)

    def changes(self, cloud: str, polled: Iterable[Trigger]) -> List[Trigger]:
        """What a poll of ``cloud`` shows that was not reported yet."""
        out: List[Trigger] = []
        present = set()
        for trigger, payload in polled:
            key = _key(trigger, payload)
            present.add(key)
            last = self.known.get(key)
            if last is None or last.get("status") != payload.get("status"):
                out.append((trigger, payload))
            self.known[key] = payload
        for key in [k for k in self.known if k[1] == cloud and k not in present]:
            gone = dict(self.known.pop(key), status="deleted", event_type="poll")
            out.append((key[0], gone))
        return out


def _key(trigger: str, payload: Dict[str, Any]) -> Tuple[str, str, str]:
    resource = payload.get("image_id") if trigger == IMAGE_STATUS else payload.get("volume_id")
    return (trigger, str(payload.get("cloud")), str(resource))


def poll_marked(cloud: str, conn: Any) -> List[Trigger]:
    """The polling fallback: every marked image and volume of one cloud, as the events would
    report them (event_type ``poll``)."""
    found: List[Trigger] = []
    for image in conn.image.images():
        source_id = (image.properties or {}).get(SOURCE_ID_KEY)
        if source_id:
            found.append((IMAGE_STATUS, image_payload(cloud, "poll", image.id, image.name,
                                                      image.status, image.owner, source_id)))
    for volume in conn.block_storage.volumes(all_projects=True):
        source_id = (volume.metadata or {}).get(SOURCE_ID_KEY)
        if source_id:
            found.append((VOLUME_STATUS, volume_payload(
                cloud, "poll", volume.id, volume.name, volume.status, volume.project_id,
                volume.size, source_id)))
    return found
