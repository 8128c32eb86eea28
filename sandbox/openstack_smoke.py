#!/usr/bin/env python3
"""End-to-end smoke test of the OpenStack sandbox against the real Ceph clusters.

Run with the sandbox's virtualenv (openstacksdk and pika live there):

    .venv-openstack/bin/python sandbox/openstack_smoke.py [--keep]

Steps, each printed as 'NAME  OK|FAIL  seconds  detail':
 1. pa1-tenant creates a 1 GiB volume; its RBD image volume-<id> exists in oscinder on `ceph`
 2. upload-to-image of that volume (raw/bare); direct_url and locations are
    rbd://<fsid of ceph>/osglance/<image id>/snap
 3. ct1-admin manages an RBD image made by hand (cinder-ceph-pa1-cl1/manage-test on `cephpa1`);
    it is renamed to volume-<new id>
 4. ct1-admin registers rbd://<fsid of cephpa1>/glance-ct1-cl1/<img>/snap with the location API
    (a tenant user is refused), then creates a volume from it (a copy-on-write clone)
 5. an `encrypted`-type volume (LUKS, fixed key) is created on pa1
 6. a notification consumer on vhost ceph_migrate_pa1 saw image.* and volume.* events
Everything created is deleted at the end unless --keep. Exit 0 when every step passed.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Tuple

import openstack
import pika

STATE = os.environ.get("CEPH_MIGRATE_OPENSTACK_DIR") or "/tmp/ceph_migrate_openstack"
RESULTS: List[Tuple[str, str, float, Any]] = []
CLEANUP: List[Tuple[str, Callable[[], Any]]] = []


def step(name: str, fn: Callable[[], Any]) -> Any:
    t0 = time.monotonic()
    try:
        out, status = fn(), "OK"
    except Exception as exc:  # noqa: B902 - reported, the next steps still run
        detail = getattr(getattr(exc, "response", None), "text", "") or ""
        out, status = "%s: %s %s" % (type(exc).__name__, exc, detail[:300]), "FAIL"
    RESULTS.append((name, status, time.monotonic() - t0, out))
    print("%-44s %-4s %6.2fs  %s" % RESULTS[-1], flush=True)
    return out if status == "OK" else None


def rbd(facts: Dict[str, Any], cloud: str, *args: str) -> str:
    """rbd as client.admin of the cloud's Ceph cluster (the Ceph sandbox's conf)."""
    ceph = facts["clouds"][cloud]["ceph"]
    argv = ["rbd", "--cluster", ceph["cluster"], "-c", ceph["admin_conf"]] + list(args)
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), res.stderr.strip()))
    return res.stdout


def wait_image(conn: Any, image_id: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        img = conn.image.get_image(image_id)
        if img.status in ("active", "killed", "deleted") or time.monotonic() > deadline:
            return img
        time.sleep(0.5)


class Notifications(threading.Thread):
    """Exclusive queue bound with notifications.# to the glance and openstack exchanges."""

    def __init__(self, rabbit: Dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.rabbit = rabbit
        self.seen: List[Dict[str, Any]] = []
        self.ready = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        params = pika.ConnectionParameters(
            host=self.rabbit["host"], port=self.rabbit["port"], virtual_host=self.rabbit["vhost"],
            credentials=pika.PlainCredentials(self.rabbit["user"], self.rabbit["password"]))
        conn = pika.BlockingConnection(params)
        ch = conn.channel()
        queue = ch.queue_declare(queue="", exclusive=True).method.queue
        for exchange in self.rabbit["exchanges"].values():
            # the declaration oslo.messaging uses: topic, not durable, not auto-delete
            ch.exchange_declare(exchange=exchange, exchange_type="topic", durable=False)
            ch.queue_bind(queue=queue, exchange=exchange, routing_key="notifications.#")
        self.ready.set()
        while not self.stop.is_set():
            method, _, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                conn.sleep(0.2)
                continue
            envelope = json.loads(body)
            msg = json.loads(envelope["oslo.message"]) if "oslo.message" in envelope else envelope
            self.seen.append({"exchange": method.exchange, "routing_key": method.routing_key,
                              "event_type": msg.get("event_type"),
                              "envelope": sorted(envelope), "payload": msg.get("payload")})
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep what the test created")
    args = parser.parse_args()
    with open(os.path.join(STATE, "openstack.json")) as fh:
        facts = json.load(fh)
    os.environ["OS_CLIENT_CONFIG_FILE"] = facts["clouds_yaml"]
    pa1, ct1 = facts["clouds"]["pa1"], facts["clouds"]["ct1"]
    pa1_tenant = openstack.connect(cloud="pa1-tenant")
    pa1_admin = openstack.connect(cloud="pa1-admin")
    ct1_admin = openstack.connect(cloud="ct1-admin")
    ct1_tenant = openstack.connect(cloud="ct1-tenant")
    suffix = uuid.uuid4().hex[:6]

    notes = Notifications(pa1["rabbit"])
    notes.start()
    notes.ready.wait(15)

    # ---------------------------------------------------------------- 1. volume on pa1
    state: Dict[str, Any] = {}

    def create_volume() -> Any:
        bs = pa1_tenant.block_storage
        v = bs.create_volume(size=1, name="smoke-vol-%s" % suffix)
        CLEANUP.append(("pa1 volume %s" % v.id, lambda: pa1_tenant.block_storage.delete_volume(
            v.id, ignore_missing=True)))
        v = bs.wait_for_status(v, "available", failures=["error"], interval=0.5, wait=120)
        images = rbd(facts, "pa1", "ls", pa1["cinder"]["pool"]).split()
        assert "volume-%s" % v.id in images, "volume-%s not in %s" % (v.id, images)
        state["vol"] = v.id
        return "%s %s type=%s host=%s, rbd %s/volume-%s exists" % (
            v.id, v.status, v.volume_type, getattr(v, "host", None), pa1["cinder"]["pool"], v.id)

    step("1 pa1-tenant create 1 GiB volume", create_volume)

    # ---------------------------------------------------------------- 2. upload-to-image
    def upload() -> Any:
        bs = pa1_tenant.block_storage
        r = bs.upload_volume_to_image(state["vol"], "smoke-upload-%s" % suffix,
                                      disk_format="raw", container_format="bare", force=False)
        image_id = r["image_id"]
        CLEANUP.append(("pa1 image %s" % image_id,
                        lambda: pa1_admin.image.delete_image(image_id, ignore_missing=True)))
        img = wait_image(pa1_tenant, image_id)
        bs.wait_for_status(bs.get_volume(state["vol"]), "available", interval=0.5, wait=120)
        want = "rbd://%s/%s/%s/snap" % (pa1["ceph"]["fsid"], pa1["glance"]["pool"], image_id)
        locs = [loc.url for loc in pa1_admin.image.image_locations(image_id)]
        snaps = json.loads(rbd(facts, "pa1", "snap", "ls", "--format", "json",
                               "%s/%s" % (pa1["glance"]["pool"], image_id)))
        assert img.status == "active", img.status
        assert img.direct_url == want, (img.direct_url, want)
        assert locs == [want], locs
        state["img"] = image_id
        return "image %s active size=%s direct_url=%s locations(GET, service role)=%s " \
               "stores=%s snaps=%s upload_keys=%s" % (
                   image_id, img.size, img.direct_url, locs,
                   pa1_tenant.image.get("/images/%s" % image_id).json().get("stores"),
                   [(s["name"], s.get("protected")) for s in snaps], sorted(r))

    step("2 upload-to-image (raw/bare)", upload)

    # ---------------------------------------------------------------- 3. manage on ct1
    def manage() -> Any:
        pool = ct1["cinder"]["pool"]
        name = "manage-test-%s" % suffix
        rbd(facts, "ct1", "create", "%s/%s" % (pool, name), "--size", "1G")
        CLEANUP.append(("ct1 rbd %s/%s" % (pool, name), lambda: name in rbd(
            facts, "ct1", "ls", pool).split() and rbd(
            facts, "ct1", "rm", "--no-progress", "%s/%s" % (pool, name))))
        bs = ct1_admin.block_storage
        mv = bs.manage_volume(host=ct1["cinder"]["manage_host"], ref={"source-name": name},
                              name="managed-%s" % suffix)
        returned = {k: mv.to_dict().get(k) for k in ("id", "status", "size", "host",
                                                     "volume_type", "name", "project_id")}
        CLEANUP.append(("ct1 volume %s" % mv.id, lambda: ct1_admin.block_storage.delete_volume(
            mv.id, ignore_missing=True)))
        mv = bs.wait_for_status(mv, "available", failures=["error", "error_managing"],
                                interval=0.5, wait=120)
        images = rbd(facts, "ct1", "ls", pool).split()
        assert "volume-%s" % mv.id in images and name not in images, images
        return "returned %s -> %s size=%s; rbd renamed %s -> volume-%s" % (
            returned, mv.status, mv.size, name, mv.id)

    step("3 ct1-admin manage_volume", manage)

    # ---------------------------------------------------------------- 4. location API on ct1
    def register() -> Any:
        pool = ct1["glance"]["pool"]
        img = ct1_admin.image.create_image(name="smoke-loc-%s" % suffix, disk_format="raw",
                                           container_format="bare", allow_duplicates=True)
        CLEANUP.append(("ct1 image %s" % img.id,
                        lambda: ct1_admin.image.delete_image(img.id, ignore_missing=True)))
        spec = "%s/%s" % (pool, img.id)
        rbd(facts, "ct1", "create", spec, "--size", "1G")
        rbd(facts, "ct1", "snap", "create", spec + "@snap")
        rbd(facts, "ct1", "snap", "protect", spec + "@snap")
        url = "rbd://%s/%s/%s/snap" % (ct1["ceph"]["fsid"], pool, img.id)
        # a tenant member on its own queued image: refused unless the URL is http(s)
        timg = ct1_tenant.image.create_image(name="smoke-loc-tenant-%s" % suffix,
                                             disk_format="raw", container_format="bare",
                                             allow_duplicates=True)
        try:
            ct1_tenant.image.add_image_location(timg, url)
            tenant = "tenant ALLOWED"
        except openstack.exceptions.HttpException as exc:
            tenant = "tenant refused HTTP %s (%s)" % (exc.status_code,
                                                      (exc.details or "")[:80])
        finally:
            ct1_tenant.image.delete_image(timg, ignore_missing=True)
        loc = ct1_admin.image.add_image_location(img, url)
        got = wait_image(ct1_admin, img.id, timeout=60)
        assert got.status == "active", got.status
        state["loc_img"] = img.id
        return "%s; admin (service role) POST /locations -> %s, image %s size=%s " \
               "checksum=%s os_hash=%s direct_url=%s" % (
                   tenant, type(loc).__name__, got.status, got.size, got.checksum,
                   got.hash_value, got.direct_url)

    step("4a ct1 register rbd location (v2 API)", register)

    def volume_from_image() -> Any:
        bs = ct1_admin.block_storage
        v = bs.create_volume(size=1, image_id=state["loc_img"], name="from-loc-%s" % suffix)
        CLEANUP.insert(0, ("ct1 volume %s" % v.id, lambda: ct1_admin.block_storage.delete_volume(
            v.id, ignore_missing=True)))
        v = bs.wait_for_status(v, "available", failures=["error"], interval=0.5, wait=180)
        info = json.loads(rbd(facts, "ct1", "info", "--format", "json",
                              "%s/volume-%s" % (ct1["cinder"]["pool"], v.id)))
        parent = info.get("parent")
        return "%s %s bootable=%s parent=%s" % (
            v.id, v.status, v.is_bootable,
            "%s/%s@%s" % (parent["pool"], parent["image"], parent["snapshot"]) if parent
            else "none (full copy)")

    step("4b ct1 create volume from that image", volume_from_image)

    # ---------------------------------------------------------------- 5. encrypted
    def encrypted() -> Any:
        bs = pa1_tenant.block_storage
        v = bs.create_volume(size=1, volume_type="encrypted", name="smoke-enc-%s" % suffix)
        CLEANUP.insert(0, ("pa1 volume %s" % v.id, lambda: pa1_tenant.block_storage.delete_volume(
            v.id, ignore_missing=True)))
        v = bs.wait_for_status(v, "available", failures=["error"], interval=0.5, wait=180)
        info = json.loads(rbd(facts, "pa1", "info", "--format", "json",
                              "%s/volume-%s" % (pa1["cinder"]["pool"], v.id)))
        meta = pa1_admin.block_storage.get("/volumes/%s/encryption" % v.id).json()
        return "%s %s encrypted=%s, admin GET /volumes/{id}/encryption: %s; rbd size=%d bytes" % (
            v.id, v.status, v.is_encrypted, meta, info["size"])

    step("5 pa1-tenant create encrypted volume", encrypted)

    # ---------------------------------------------------------------- 6. notifications
    def notifications() -> Any:
        time.sleep(2.0)
        counts = collections.Counter((n["exchange"], n["routing_key"], n["event_type"])
                                     for n in notes.seen)
        types = {k[2] for k in counts}
        assert any(t.startswith("image.") for t in types), counts
        assert any(t.startswith("volume.") for t in types), counts
        return "; ".join("%s %s %s x%d" % (k + (n,)) for k, n in sorted(counts.items())) + \
            "; envelope keys %s" % (notes.seen[0]["envelope"] if notes.seen else None)

    step("6 notifications on vhost %s" % pa1["rabbit"]["vhost"], notifications)
    notes.stop.set()

    if not args.keep:
        for what, fn in CLEANUP:
            try:
                fn()
                if " volume " in " %s " % what:
                    # RBD clones block deleting their parent image: wait until the volume is gone
                    conn = ct1_admin if what.startswith("ct1") else pa1_admin
                    vid = what.split()[-1]
                    conn.block_storage.wait_for_delete(
                        conn.block_storage.get_volume(vid), interval=0.5, wait=120)
            except openstack.exceptions.NotFoundException:
                pass
            except Exception as exc:  # noqa: B902 - best effort
                print("cleanup %s: %s" % (what, exc))
    failed = [r for r in RESULTS if r[1] != "OK"]
    print("%d passed, %d failed" % (len(RESULTS) - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
