"""The notification sensor's decisions on real notification bodies (tests/fixtures/
notifications, published by the sandbox clouds during a real migration): which become
triggers, with which payloads (valid against the trigger schemas), malformed ones dropped."""
import json
import os

import pytest

from lib.notifications import (IMAGE_STATUS, VOLUME_STATUS, MalformedMessage, StatusBook, decode,
                               to_trigger)
from st2_support import TESTS_DIR

FIXTURE = os.path.join(TESTS_DIR, "fixtures", "notifications", "migration.jsonl")


def recorded():
    with open(FIXTURE) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def triggers():
    found = []
    for row in recorded():
        trigger = to_trigger(row["cloud"], decode(row["body"]))
        if trigger:
            found.append(trigger)
    return found


def test_every_recorded_body_decodes_and_only_marked_resources_become_triggers():
    rows = recorded()
    messages = [decode(row["body"]) for row in rows]
    assert len(messages) == len(rows) > 20
    summary = [(t, p["cloud"], p["event_type"], p["status"]) for t, p in triggers()]
    assert summary == [
        (VOLUME_STATUS, "destination", "volume.manage_existing.end", "available"),
        (IMAGE_STATUS, "source", "image.update", "queued"),
        (IMAGE_STATUS, "source", "image.update", "saving"),
        (IMAGE_STATUS, "source", "image.activate", "active"),
        (IMAGE_STATUS, "source", "image.update", "active"),
        (IMAGE_STATUS, "destination", "image.create", "queued"),
        (IMAGE_STATUS, "destination", "image.update", "queued"),
        (IMAGE_STATUS, "destination", "image.update", "active"),
        (VOLUME_STATUS, "destination", "volume.create.end", "available"),
        (VOLUME_STATUS, "destination", "volume.delete.end", "deleted"),
        (VOLUME_STATUS, "destination", "volume.delete.end", "deleted"),
        (IMAGE_STATUS, "destination", "image.delete", "deleted"),
        (IMAGE_STATUS, "source", "image.delete", "deleted")]
    # the source volumes' own events (not marked) are not reported
    assert not any(p["event_type"] == "volume.create.end" and p["cloud"] == "source"
                   for _, p in triggers())


def test_payloads_carry_the_migration_ids():
    manage = [p for t, p in triggers() if p["event_type"] == "volume.manage_existing.end"][0]
    assert manage["source_id"] and manage["volume_id"] != manage["source_id"]
    assert manage["size_gib"] == 1 and manage["project_id"] and manage["name"]
    active = [p for t, p in triggers() if p["event_type"] == "image.activate"][0]
    assert active["owner"] and active["image_id"] and active["error"] is None


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'{"oslo.message": "{"}',
                                  b'{"oslo.message": "{\\"payload\\": {}}"}', b"\xff\xfe",
                                  json.dumps({"event_type": 5}).encode()])
def test_malformed_bodies_are_refused_as_value_errors(body):
    with pytest.raises(MalformedMessage):
        decode(body)
    assert issubclass(MalformedMessage, ValueError)     # the listener drops ValueErrors


def test_an_upload_failure_is_reported_with_its_error():
    message = {"event_type": "image.upload", "priority": "ERROR",
               "payload": "Image storage media is full"}
    assert to_trigger("source", message) is None     # nothing says which image: not ours
    marked = {"event_type": "image.upload", "priority": "ERROR",
              "payload": {"id": "i-1", "status": "queued", "name": "x", "owner": "p",
                          "properties": {"ceph_migrate_source_id": "v-1"}}}
    trigger, payload = to_trigger("source", marked)
    assert trigger == IMAGE_STATUS and payload["event_type"] == "image.upload"


def test_the_status_book_reports_only_changes_and_what_is_gone():
    found = triggers()
    volume, saving, active = found[0], found[2], found[3]
    book = StatusBook()
    book.baseline([volume, saving])                     # what events told before the outage
    assert book.changes("source", [active]) == [active]     # a poll of the source during it
    assert book.changes("source", [active]) == []
    assert book.changes("destination", [volume]) == []
    trigger, gone = book.changes("destination", [])[0]     # the volume was deleted meanwhile
    assert trigger == VOLUME_STATUS and gone["status"] == "deleted"
    assert gone["volume_id"] == volume[1]["volume_id"] and gone["event_type"] == "poll"
    assert book.changes("destination", []) == []


@pytest.fixture
def sensor(make_sensor):
    instance = make_sensor("notification_sensor", config={})
    instance.setup()
    return instance


def test_the_sensor_dispatches_schema_valid_payloads_and_marks_active_images(sensor):
    for row in recorded():
        sensor._on_body(row["cloud"], row["body"].encode())
    service = sensor.sensor_service
    refs = [d["trigger"] for d in service.dispatched_triggers]
    assert refs.count("ceph_migrate.image_status") == 9
    assert refs.count("ceph_migrate.volume_status") == 4
    active = [p for p in service.payloads("ceph_migrate.image_status")
              if p["status"] == "active"]
    for payload in active:
        key = "ceph_migrate.image_active.%s" % payload["image_id"]
        assert json.loads(service.get_value(key, local=False))["at"] > 0
    with pytest.raises(MalformedMessage):
        sensor._on_body("source", b"garbage")
