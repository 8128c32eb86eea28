"""A RabbitMQ node of a sandbox's own: loopback only (AMQP, epmd and Erlang distribution), every
file in one directory, started as Debian's foreground script (no su wrapper) and stopped by
the PID its caller records. The OpenStack sandbox runs one for the clouds' notifications, the
StackStorm sandbox one for StackStorm's messaging: each can be restarted or stopped without
touching the other or the machine's broker."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any, Callable, Dict, Sequence

from sandbox_common import Clock, SandboxError, port_open, run, wait_for, write_file

HOST = "127.0.0.1"
# start(name, argv, env): the caller's way of starting and recording a process
Starter = Callable[[str, Sequence[str], Dict[str, str]], Any]


@dataclass(frozen=True)
class RabbitNode:
    directory: str
    nodename: str     # without host: '<nodename>@localhost'
    port: int
    epmd_port: int

    SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
    CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
    # the sh script and the Erlang VM it runs: what a recorded broker PID may show
    PROGRAMS = ("rabbitmq-server", "beam.smp", "erl_child_setup", "inet_gethost")

    @property
    def node(self) -> str:
        return "%s@localhost" % self.nodename

    @property
    def dist_port(self) -> int:
        return self.port + 20000

    def env(self) -> Dict[str, str]:
        """Environment of the node and of its rabbitmqctl."""
        d = self.directory
        loopback = "-kernel inet_dist_use_interface {127,0,0,1}"
        return dict(os.environ,
                    HOME=d,
                    RABBITMQ_CONF_ENV_FILE=os.path.join(d, "rabbitmq-env.conf"),
                    RABBITMQ_CONFIG_FILE=os.path.join(d, "rabbitmq.conf"),
                    RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(d, "enabled_plugins"),
                    RABBITMQ_NODENAME=self.node,
                    RABBITMQ_NODE_IP_ADDRESS=HOST,
                    RABBITMQ_NODE_PORT=str(self.port),
                    RABBITMQ_DIST_PORT=str(self.dist_port),
                    RABBITMQ_MNESIA_BASE=os.path.join(d, "mnesia"),
                    RABBITMQ_LOG_BASE=os.path.join(d, "log"),
                    RABBITMQ_PID_FILE=os.path.join(d, "beam.pid"),
                    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=loopback,
                    RABBITMQ_CTL_ERL_ARGS=loopback,
                    ERL_EPMD_ADDRESS=HOST,
                    ERL_EPMD_PORT=str(self.epmd_port))

    def answers(self) -> bool:
        return port_open(self.port)

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run([self.CTL, "-n", self.node] + list(args), timeout=60, env=self.env(),
                   check=check)

    def write_files(self) -> None:
        d = self.directory
        for sub in ("mnesia", "log"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        write_file(os.path.join(d, "rabbitmq-env.conf"), "")
        write_file(os.path.join(d, "enabled_plugins"), "[].\n")
        write_file(os.path.join(d, "rabbitmq.conf"), "\n".join([
            "listeners.tcp.default = %s:%d" % (HOST, self.port),
            "loopback_users = none",
            "log.console = false",
            "log.file.level = warning", ""]))

    def start(self, start: Starter, clock: Clock, epmd: bool = True) -> None:
        """Start the node (epmd first when none listens on its port: else erl would spawn an
        unrecorded epmd daemon itself) and wait until it has booted."""
        if not os.path.exists(self.SERVER):
            raise SandboxError("%s is missing (Debian package rabbitmq-server)" % self.SERVER)
        self.write_files()
        if epmd and not port_open(self.epmd_port):
            binary = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
            start("epmd", [binary, "-address", HOST, "-port", str(self.epmd_port)], self.env())
        start("rabbitmq", [self.SERVER], self.env())
        self.wait_started(clock)

    def wait_started(self, clock: Clock) -> None:
        wait_for(lambda: (self.answers(), "port %d closed" % self.port), 90,
                 "RabbitMQ %s" % self.node, interval=0.3)
        self.ctl("await_startup")
        clock.log("RabbitMQ up on %s:%d (node %s)" % (HOST, self.port, self.node))

    def wait_stopped(self) -> None:
        wait_for(lambda: (not self.answers(), "port %d still open" % self.port), 60,
                 "RabbitMQ %s stop" % self.node, interval=0.3)
