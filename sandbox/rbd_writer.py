#!/usr/bin/python3
"""Write random data into an RBD image through librbd, as a guest would.

Runs with Debian's python3 (python3-rbd comes with ceph-common), not the test venv:
  rbd_writer.py --cluster C --conf F --id ID --keyring K --image POOL/IMG --mib N
                [--offset-mib O] [--seed S] [--hold SECONDS]
``--seed`` makes the data reproducible; ``--hold`` keeps the image open (a watcher, like a
running VM) for that long after writing. ``write_random`` runs it from any interpreter (the
tests, the demo and the benchmarks).
"""
import argparse
import os
import random
import subprocess
import time
from typing import Any

CHUNK = 4 * 1024 * 1024
SYSTEM_PYTHON = "/usr/bin/python3"      # Debian's, with python3-rbd from ceph-common


def write_random(cluster: Any, spec: str, mib: int, offset_mib: int = 0, hold: float = 0,
                 timeout: float = 600) -> None:
    """Random bytes into ``pool/image`` on ``cluster`` (name, conf, client_id, keyring: a
    lib.ceph_cli.CephCluster), through this script and Debian's python3."""
    subprocess.run([SYSTEM_PYTHON, os.path.abspath(__file__), "--cluster", cluster.name,
                    "--conf", cluster.conf, "--id", cluster.client_id, "--keyring",
                    cluster.keyring, "--image", spec, "--mib", str(mib), "--offset-mib",
                    str(offset_mib), "--hold", str(hold)], check=True, timeout=timeout)


def main() -> None:
    import rados
    import rbd

    parser = argparse.ArgumentParser()
    for name in ("--cluster", "--conf", "--id", "--keyring", "--image"):
        parser.add_argument(name, required=True)
    parser.add_argument("--mib", type=int, required=True)
    parser.add_argument("--offset-mib", type=int, default=0)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--hold", type=float, default=0)
    args = parser.parse_args()
    pool, image_name = args.image.split("/", 1)
    rng = random.Random(args.seed)
    cluster = rados.Rados(clustername=args.cluster, conffile=args.conf, rados_id=args.id,
                          conf={"keyring": args.keyring})
    cluster.connect(timeout=30)
    try:
        with cluster.open_ioctx(pool) as ioctx, rbd.Image(ioctx, image_name) as image:
            offset, end = args.offset_mib * 1024 * 1024, (args.offset_mib + args.mib) * 1024 * 1024
            while offset < end:
                size = min(CHUNK, end - offset)
                image.write(rng.getrandbits(8 * size).to_bytes(size, "little"), offset)
                offset += size
            image.flush()
            if args.hold:
                time.sleep(args.hold)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
