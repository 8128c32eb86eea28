"""The clouds' side of the Ceph sandbox: the cinder and glance Ceph users, client-only confs,
os-brick's keyring links, and the RBD images a wiped cloud leaves behind."""
from __future__ import annotations

import json
import os
import sqlite3
from typing import Any, Callable, Dict, List, Optional

import ceph_sandbox
from sandbox_common import (
    Clock, in_parallel, json_or_none, read_json, run, SandboxError, state_lock, write_file)
from openstack_clouds.layout import CLOUDS, CloudSpec, ini, Paths, VMS_POOL

CEPH_USERS = ("cinder", "glance", "nova")
CEPH_CAPS = (("mon", "profile rbd"), ("osd", "profile rbd"), ("mgr", "profile rbd"))
ETC_CEPH = "/etc/ceph"


def ceph_facts(clock: Clock) -> Dict[str, Any]:
    """The Ceph sandbox's sandbox.json; brings the Ceph sandbox up when its daemons are down
    (never touches it when they run). Under the Ceph sandbox's lock, as its own `up` is."""
    cp = ceph_sandbox.paths()
    with state_lock(cp.root):
        if not ceph_sandbox.daemons_running(cp) or not os.path.isfile(cp.facts):
            clock.log("Ceph sandbox in %s is not running: bringing it up" % cp.root)
            ceph_sandbox.up(cp)
        with open(cp.facts) as fh:
            return json.load(fh)


def ensure_ceph_user(ceph: Dict[str, Any], cluster: str, user: str, keyring: str) -> None:
    """client.USER with the rbd profiles, key written to KEYRING (caps fixed if they differ)."""
    base = ceph_sandbox.ceph_argv(ceph_sandbox.paths(ceph["state_dir"]), cluster,
                                  connect_timeout=15)
    caps: List[str] = []
    for svc, cap in CEPH_CAPS:
        caps += [svc, cap]
    res = run(base + ["auth", "get-or-create", "client.%s" % user] + caps + ["-o", keyring],
              check=False, timeout=30)
    if res.returncode != 0:
        if "does not match" not in res.stderr:
            raise SandboxError("ceph auth get-or-create client.%s on %s: %s"
                               % (user, cluster, res.stderr.strip()))
        run(base + ["auth", "caps", "client.%s" % user] + caps, timeout=30)
        run(base + ["auth", "get", "client.%s" % user, "-o", keyring], timeout=30)
    os.chmod(keyring, 0o600)


def write_ceph_conf(p: Paths, spec: CloudSpec, ceph: Dict[str, Any]) -> None:
    """A client-only <cluster>.conf per cloud: no admin key, just the cinder/glance keyrings."""
    c = ceph["clusters"][spec.ceph_cluster]
    d = p.cloud(spec.name, "ceph")
    os.makedirs(os.path.join(d, "run"), exist_ok=True)
    sections = [
        ("global", [("fsid", c["fsid"]), ("mon host", c["mon_host"]),
                    ("ms bind ipv6", "false"), ("run dir", os.path.join(d, "run")),
                    ("log file", os.path.join(p.log_dir(spec.name), "$cluster-$name.log"))]),
    ]
    for user in CEPH_USERS:
        sections.append(("client.%s" % user, [("keyring", p.ceph_keyring(spec, user))]))
    write_file(p.ceph_conf(spec), ini(sections))


def brick_keyring(spec: CloudSpec) -> str:
    """Where os-brick looks for cinder's key: hard-coded /etc/ceph/<cluster>.client.<user>.keyring
    (cinder's rbd_keyring_conf is not settable in OpenStack, OSSN-0085). Cinder's RBD driver
    opens volumes through os-brick for upload-to-image (raw), migration and backups."""
    return os.path.join(ETC_CEPH, "%s.client.cinder.keyring" % spec.ceph_cluster)


def _links_into(path: str, root: str) -> bool:
    """PATH is a symlink into state dir ROOT: ours to replace or remove."""
    return os.path.islink(path) and os.readlink(path).startswith(root + os.sep)


def link_brick_keyring(p: Paths, spec: CloudSpec) -> None:
    """Symlink brick_keyring() to the state dir's keyring, as a cinder-volume host has it.
    A file or link there that is not ours (and not identical) is left alone: error."""
    path, target = brick_keyring(spec), p.ceph_keyring(spec, "cinder")
    os.makedirs(ETC_CEPH, exist_ok=True)
    if os.path.islink(path) and os.readlink(path) == target:
        return
    if os.path.exists(path):   # a file, or a link to another sandbox's keyring
        with open(path) as fh, open(target) as mine:
            if fh.read() == mine.read():
                return   # the same key of the same Ceph user: fine as it is
        if not _links_into(path, p.root):
            raise SandboxError("%s holds another key for client.cinder: os-brick "
                               "(upload-to-image) would use it; move it away" % path)
    if os.path.lexists(path):
        os.unlink(path)   # dangling, or a stale link into our own state dir
    os.symlink(target, path)


def unlink_brick_keyrings(p: Paths) -> List[str]:
    """Remove the /etc/ceph links that point into our state dir (down --wipe)."""
    gone = []
    for spec in CLOUDS:
        path = brick_keyring(spec)
        if _links_into(path, p.root):
            os.unlink(path)
            gone.append(path)
    return gone


def prepare_ceph(p: Paths, ceph: Dict[str, Any], clock: Clock) -> None:
    """Keyrings of client.cinder, client.glance and client.nova on both clusters, in parallel
    (cheap, redone on every start so that a rebuilt Ceph sandbox is picked up)."""
    jobs: List[Callable[[], Any]] = []
    for spec in CLOUDS:
        os.makedirs(p.cloud(spec.name, "ceph"), exist_ok=True)
        for user in CEPH_USERS:
            jobs.append(lambda s=spec, u=user: ensure_ceph_user(
                ceph, s.ceph_cluster, u, p.ceph_keyring(s, u)))
    in_parallel(jobs)
    for spec in CLOUDS:
        write_ceph_conf(p, spec, ceph)
        link_brick_keyring(p, spec)
    clock.log("Ceph users client.cinder, client.glance, client.nova ready on %s"
              % " and ".join(sorted({s.ceph_cluster for s in CLOUDS})))


def owned_rbd_images(p: Paths, spec: CloudSpec, fsid: str) -> List[str]:
    """'pool/image' of every RBD image the cloud's databases still hold, servers' disks first
    and volumes next (they may be clones of the Glance images); a server's disk is named by its
    uuid only (vms/<uuid>_disk...: purge_rbd_image() takes each image with that prefix)."""
    owned: List[str] = []
    queries = (("nova_cell1", "select uuid, null from instances where deleted = 0"),
               ("cinder", "select coalesce(_name_id, id), host from volumes where deleted = 0"),
               ("glance", "select value, null from image_locations where deleted = 0"))
    pools = dict(spec.backends)
    for project, query in queries:
        db = p.db(spec.name, project)
        if not os.path.isfile(db):
            continue
        con = sqlite3.connect(db)
        try:
            rows = con.execute(query).fetchall()
        except sqlite3.Error:
            rows = []
        finally:
            con.close()
        for row, host in rows:
            if project == "nova_cell1":
                owned.append("%s/%s_disk*" % (VMS_POOL, row))
            elif project == "cinder":     # host@backend#pool: the backend's RBD pool
                backend = (host or "").partition("@")[2].partition("#")[0]
                owned.append("%s/volume-%s" % (pools.get(backend, spec.cinder_pool), row))
            elif row.startswith("rbd://%s/" % fsid) and len(row.split("/")) == 6:
                owned.append("/".join(row.split("/")[3:5]))
    return owned


def purge_rbd_image(cp: ceph_sandbox.Paths, cluster: str, image: str) -> Optional[str]:
    """Remove one RBD image with its snapshots (every image of a prefix when IMAGE ends in
    '*'); None when done or already gone, else why not."""
    base = ceph_sandbox.rbd_argv(cp, cluster)
    if image.endswith("*"):
        pool, _, prefix = image[:-1].partition("/")
        res = run(base + ["ls", pool], check=False, timeout=60)
        names = [n for n in res.stdout.split() if n.startswith(prefix)]
        failed = [why for n in names for why in [purge_rbd_image(cp, cluster, pool + "/" + n)]
                  if why]
        return "; ".join(failed) or None
    res = run(base + ["snap", "ls", "--all", "--format", "json", image], check=False, timeout=60)
    if res.returncode != 0:
        return None if "No such file" in res.stderr else res.stderr.strip()[-200:]
    snaps = json_or_none(res) or []
    for snap in snaps:
        if snap.get("protected") == "true":
            run(base + ["snap", "unprotect", "%s@%s" % (image, snap["name"])], check=False)
    if any(snap.get("namespace", {}).get("type") == "mirror" for snap in snaps):
        run(base + ["mirror", "image", "disable", "--force", image], check=False, timeout=60)
    run(base + ["snap", "purge", "--no-progress", image], check=False, timeout=300)
    res = run(base + ["rm", "--no-progress", image], check=False, timeout=300)
    return None if res.returncode == 0 else res.stderr.strip()[-200:]


def purge_ceph(p: Paths) -> None:
    """down --wipe: delete the RBD images of the clouds' volumes and images, so that the shared
    Ceph pools do not fill with orphans. Needs the Ceph sandbox running; skipped otherwise."""
    cp = ceph_sandbox.paths()
    ceph = read_json(cp.facts)
    if not ceph_sandbox.daemons_running(cp) or not isinstance(ceph, dict):
        print("Ceph sandbox not running: RBD images of the clouds left in place")
        return
    for spec in CLOUDS:
        fsid = ceph["clusters"][spec.ceph_cluster]["fsid"]
        images = owned_rbd_images(p, spec, fsid)
        failed = [(i, why) for i in images
                  for why in [purge_rbd_image(cp, spec.ceph_cluster, i)] if why]
        print("%s: removed %d RBD images from cluster %s%s"
              % (spec.name, len(images) - len(failed), spec.ceph_cluster,
                 "".join("; could not remove %s: %s" % f for f in failed)))
