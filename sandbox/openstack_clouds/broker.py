"""RabbitMQ for the clouds' notifications: the sandbox's own loopback broker (or the machine's
when one answers), one vhost per cloud."""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, Callable, List, Sequence

from sandbox_common import (
    Clock, drop_recorded, in_parallel, port_open, run, SandboxError, stop_recorded)
from rabbit_node import RabbitNode
from openstack_clouds.layout import CLOUDS, CloudSpec, Paths
from openstack_clouds.processes import BROKER_CLOUD, matcher, read_pids, start_proc, STOP_GRACE

BROKER_HOST = "127.0.0.1"
# Not the machine's 5672/4369: the sandbox runs a broker of its own, which the notification
# sensor's tests restart under it. A broker already answering on BROKER_PORT is still reused.
# The Erlang distribution port follows the AMQP port.
BROKER_PORT = int(os.environ.get("CEPH_MIGRATE_OPENSTACK_RABBIT_PORT") or 5682)
EPMD_PORT = int(os.environ.get("CEPH_MIGRATE_OPENSTACK_EPMD_PORT") or 4379)
RABBIT_USER = "guest"
RABBIT_PASSWORD = "guest"
RABBIT_NODENAME = "ceph_migrate_os"


def broker_answers() -> bool:
    return port_open(BROKER_PORT, BROKER_HOST)


def broker_node(p: Paths) -> RabbitNode:
    """The sandbox's own loopback-only broker, every file in <state>/rabbitmq."""
    return RabbitNode(p.broker_dir, RABBIT_NODENAME, BROKER_PORT, EPMD_PORT)


def own_broker(p: Paths) -> bool:
    return any(x.name == "rabbitmq" for x in read_pids(p))


def rabbitmqctl(p: Paths, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """rabbitmqctl against the broker we use: our own node, or the machine's."""
    if shutil.which("rabbitmqctl") is None:
        raise SandboxError("rabbitmqctl not found: a broker answers on %s:%d but cannot be "
                           "managed (install rabbitmq-server's tools)" % (BROKER_HOST, BROKER_PORT))
    if own_broker(p):
        # not Debian's /usr/sbin wrapper: it su's to the rabbitmq user and its HOME (cookie)
        return broker_node(p).ctl(*args, check=check)
    return run(["rabbitmqctl"] + list(args), timeout=60, check=check)


def start_own_broker(p: Paths, clock: Clock) -> None:
    """A loopback-only RabbitMQ of our own (a fresh machine may have no broker)."""
    broker_node(p).start(lambda name, argv, env: start_proc(
        p, BROKER_CLOUD, name, argv, extra_env=env, cwd=p.broker_dir), clock)


def restart_broker(p: Paths) -> None:
    """Stop the own broker by its PID and start it again on the same data (vhosts, users):
    what the clouds and the notification sensor must live through."""
    clock = Clock()
    brokers = [x for x in read_pids(p) if x.name == "rabbitmq"]
    if not brokers:
        raise SandboxError("the broker on %s:%d is not this sandbox's own: not restarting it"
                           % (BROKER_HOST, BROKER_PORT))
    node = broker_node(p)
    stop_recorded(brokers, (("rabbitmq",),), STOP_GRACE, matcher(p), log=clock.log)
    for broker in brokers:
        drop_recorded(p.pids, broker.pid)
    node.wait_stopped()
    clock.log("broker stopped")
    start_proc(p, BROKER_CLOUD, "rabbitmq", [RabbitNode.SERVER], extra_env=node.env(),
               cwd=p.broker_dir)
    node.wait_started(clock)


def list_vhosts(p: Paths) -> List[str]:
    return rabbitmqctl(p, "list_vhosts", "-q", "--no-table-headers").stdout.split()


def ensure_vhosts(p: Paths, reset: Sequence[str], clock: Clock) -> None:
    """One vhost per cloud with full permissions for guest; vhosts in RESET are recreated
    empty (a rebuilt cloud must not see the old cloud's queues)."""
    have = set(list_vhosts(p))
    jobs: List[Callable[[], Any]] = []

    def make(vhost: str, drop: bool) -> None:
        if drop:
            rabbitmqctl(p, "delete_vhost", vhost)
        rabbitmqctl(p, "add_vhost", vhost)
        rabbitmqctl(p, "set_permissions", "-p", vhost, RABBIT_USER, ".*", ".*", ".*")

    for spec in CLOUDS:
        if spec.vhost not in have or spec.vhost in reset:
            jobs.append(lambda v=spec.vhost, d=spec.vhost in have: make(v, d))
    in_parallel(jobs)
    clock.log("RabbitMQ vhosts %s ready" % " ".join(s.vhost for s in CLOUDS))


def delete_vhosts(p: Paths) -> List[str]:
    """Remove our vhosts from the machine's broker (down --wipe)."""
    if not broker_answers() or shutil.which("rabbitmqctl") is None:
        return []
    have = set(list_vhosts(p))
    gone = [s.vhost for s in CLOUDS if s.vhost in have]
    in_parallel([lambda v=v: rabbitmqctl(p, "delete_vhost", v) for v in gone])
    return gone


def transport_url(spec: CloudSpec) -> str:
    return "rabbit://%s:%s@%s:%d/%s" % (RABBIT_USER, RABBIT_PASSWORD, BROKER_HOST, BROKER_PORT,
                                        spec.vhost)


def queue_exists(spec: CloudSpec, queue: str) -> bool:
    """QUEUE is declared in SPEC's vhost (a passive declare; False when the broker is away)."""
    import pika  # the project's venv and the OpenStack venv both have it

    params = pika.ConnectionParameters(
        host=BROKER_HOST, port=BROKER_PORT, virtual_host=spec.vhost,
        credentials=pika.PlainCredentials(RABBIT_USER, RABBIT_PASSWORD),
        socket_timeout=5, blocked_connection_timeout=5)
    try:
        conn = pika.BlockingConnection(params)
    except pika.exceptions.AMQPError:
        return False
    try:
        conn.channel().queue_declare(queue=queue, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if conn.is_open:
            conn.close()
