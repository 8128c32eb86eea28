"""A real StackStorm 3.9 for tests: the project's sandbox (``sandbox/st2_sandbox.py``), the pack
installed in it by the README's own commands, and the ``st2`` CLI run as each of its users.

Everything goes through StackStorm's API (the CLI is st2client): what a user types is what the
tests type. The session fixture starts the StackStorm sandbox when it is not up and stops it
again at the end if it started it (``CEPH_MIGRATE_KEEP_SANDBOX=1`` keeps it).
"""
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import yaml

from ceph_env import REPO

ST2_SANDBOX = REPO / "sandbox" / "st2_sandbox.py"
README = REPO / "README.md"
# StackStorm accounts of the sandbox (flat-file auth) and who answers which gate
APPROVALS = {"ceph_admin": {"users": ["ceph-admin"], "roles": [], "chat_users": ["carol"]},
             "tenant_admin": {"users": ["tenant-admin"], "roles": [],
                              "chat_users": ["tina", "tom"]}}
# who answers from chat, per StackStorm account the gate names (the bot runs as that account)
CHAT_USER = {"ceph-admin": "carol", "tenant-admin": "tom"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
COMPLETED = ("succeeded", "failed", "timeout", "canceled", "abandoned")


def _st2_sandbox(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ST2_SANDBOX)] + list(args), capture_output=True,
                          text=True, timeout=timeout)


class St2Error(AssertionError):
    """A st2 CLI call failed; the message has its output."""


class St2:
    """The st2 CLI of the sandbox, authenticated as any of its users."""

    def __init__(self, facts: Dict[str, Any]) -> None:
        self.facts = facts
        self.passwords = json.loads(Path(facts["passwords"]).read_text())
        self._tokens: Dict[str, str] = {}

    def env(self, user: Optional[str] = "st2admin") -> Dict[str, str]:
        env = dict(os.environ, **self.facts["env"])
        env.pop("ST2_AUTH_TOKEN", None)
        if user:
            env["ST2_AUTH_TOKEN"] = self.token(user)
        return env

    def token(self, user: str) -> str:
        if user not in self._tokens:
            res = subprocess.run([self.facts["st2"], "auth", user, "-p", self.passwords[user],
                                  "-t"], capture_output=True, text=True, timeout=60,
                                 env=self.env(None))
            if res.returncode != 0:
                raise St2Error("st2 auth %s: %s" % (user, res.stderr or res.stdout))
            self._tokens[user] = res.stdout.strip()
        return self._tokens[user]

    def shell(self, argv: List[str], user: str = "st2admin",
              timeout: float = 600) -> subprocess.CompletedProcess:
        """One command line as the sandbox's env.sh sets it up (st2, st2ctl, cp, ...); the
        output as a user reads it (st2's colours removed)."""
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                             env=self.env(user))
        res.stdout, res.stderr = _ANSI.sub("", res.stdout), _ANSI.sub("", res.stderr)
        return res

    def cancel(self, execution_id: str) -> None:
        """Test cleanup: a workflow left paused at a gate (or running) is canceled."""
        if self.execution(execution_id)["status"] not in COMPLETED:
            self.run("execution", "cancel", execution_id, check=False)

    def run(self, *args: str, user: str = "st2admin", check: bool = True,
            timeout: float = 600) -> subprocess.CompletedProcess:
        res = self.shell([self.facts["st2"]] + list(args), user=user, timeout=timeout)
        if check and res.returncode != 0:
            raise St2Error("st2 %s (as %s) failed rc %d:\n%s\n%s" % (
                " ".join(args), user, res.returncode, res.stdout[-3000:], res.stderr[-3000:]))
        return res

    def json(self, *args: str, user: str = "st2admin", timeout: float = 600) -> Any:
        return json.loads(self.run(*(list(args) + ["-j"]), user=user, timeout=timeout).stdout)

    def api(self, method: str, path: str, body: Any = None, user: str = "st2admin") -> Any:
        """One call of StackStorm's REST API (what the CLI does not offer); HTTP errors raise
        with their status, the parsed body otherwise."""
        request = urllib.request.Request(self.facts["api_url"] + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
        request.add_header("X-Auth-Token", self.token(user))
        request.add_header("Content-Type", "application/json")
        with _NO_PROXY.open(request, timeout=60) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def execution(self, execution_id: str) -> Dict[str, Any]:
        return self.api("GET", "/executions/%s" % execution_id)

    def children(self, execution_id: str) -> List[Dict[str, Any]]:
        return self.api("GET", "/executions?parent=%s&limit=200&exclude_attributes=result"
                        % execution_id)

    def wait(self, execution_id: str, until: Callable[[Dict[str, Any]], bool],
             timeout: float = 600, what: str = "") -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            ex = self.execution(execution_id)
            if until(ex):
                return ex
            if time.monotonic() > deadline:
                raise AssertionError("execution %s: %s not reached in %.0fs (status %s)" % (
                    execution_id, what or "condition", timeout, ex.get("status")))
            time.sleep(1)

    def inquiries(self) -> List[Dict[str, Any]]:
        """Pending inquiries (gates), each with its task, its workflow, the top-level
        execution it runs under (``top``) and, for a batch's volume, the batch (``batch``)."""
        found = []
        for inquiry in self.api("GET", "/inquiries?limit=100"):
            ex = self.execution(inquiry["id"])
            context = ex.get("context") or {}
            inquiry["task"] = (context.get("orquesta") or {}).get("task_name")
            inquiry["workflow"] = (context.get("parent") or {}).get("execution_id")
            while ex.get("parent"):
                ex = self.execution(ex["parent"])
            inquiry["top"] = ex["id"]
            inquiry["batch"] = (ex.get("parameters") or {}).get("batch_id")
            if inquiry["batch"]:    # a batch run inside a workflow (migrate_tenant): its top
                batch = self.execution(inquiry["batch"])
                while batch.get("parent"):
                    batch = self.execution(batch["parent"])
                inquiry["batch_top"] = batch["id"]
            found.append(inquiry)
        return found

    def batch_items(self, batch_id: str) -> List[Dict[str, Any]]:
        """The executions a migrate_batch started for its volumes (each a top-level one)."""
        return [e for e in self.api("GET", "/executions?action=ceph_migrate.migrate_batch_item"
                                           "&limit=100&exclude_attributes=result")
                if (e.get("parameters") or {}).get("batch_id") == batch_id]

    def respond(self, inquiry_id: str, approved: bool, user: str,
                check: bool = True) -> subprocess.CompletedProcess:
        return self.run("inquiry", "respond", inquiry_id, "-r",
                        json.dumps({"approved": approved}), user=user, check=check)

    # ---------------------------------------------------------------- chat
    def chat(self, command: str, user: str = "st2admin", chat_user: str = "alice",
             channel: str = "#storage-ops") -> Dict[str, Any]:
        """A chat command as a chat bot sends it: the alias matched (POST /actionalias/match)
        and executed (POST /aliasexecution) with the bot's token (USER), the chat user and
        channel, results routed back to chat ('hubot'). Returns the API's answer: execution
        and ack message."""
        match = self.api("POST", "/actionalias/match", {"command": command}, user=user)
        alias = match["actionalias"]
        answer = self.api("POST", "/aliasexecution", {
            "name": alias["name"], "format": match["representation"], "command": command,
            "user": chat_user, "source_channel": channel, "notification_route": "hubot"},
            user=user)
        return dict(answer, alias=alias["ref"])

    def chat_reply(self, execution_id: str, timeout: float = 600) -> str:
        """The message StackStorm's chatops pack posts back when EXECUTION_ID completes
        (rule chatops.notify -> chatops.post_result -> format_execution_result)."""
        deadline = time.monotonic() + timeout
        while True:
            for post in self.api("GET", "/executions?action=chatops.post_result&limit=50"
                                 "&exclude_attributes=result"):
                if (post.get("parameters") or {}).get("execution_id") != execution_id:
                    continue
                for child in self.children(post["id"]):
                    if child["action"]["ref"] == "chatops.format_execution_result" and \
                            child["status"] in COMPLETED:
                        result = self.execution(child["id"])["result"]["result"]
                        return result["message"]
            if time.monotonic() > deadline:
                raise AssertionError("no chat reply for execution %s" % execution_id)
            time.sleep(1)


def gate_user(inquiry: Dict[str, Any]) -> str:
    """The account a gate names (the first of its users)."""
    users = inquiry.get("users") or []
    assert users, "gate %s names no users: %s" % (inquiry["id"], inquiry)
    return users[0]


def answer_gates(st2: St2, root_id: str, decide: Callable[[Dict[str, Any]], Optional[bool]],
                 timeout: float = 900, wrong_user: Optional[str] = None,
                 respond: Optional[Callable[[Dict[str, Any], bool, str], None]] = None
                 ) -> Dict[str, Any]:
    """Drive a workflow (its subworkflows, a batch's volumes) to its end: every gate under ROOT_ID
    is answered by the account it names, with decide(inquiry) (None: leave it pending and
    stop); RESPOND(inquiry, verdict, user) answers (default `st2 inquiry respond`). With
    WRONG_USER, that account tries each gate first and must be refused. Returns the root
    execution, with the answered gates in ``_gates``."""
    deadline = time.monotonic() + timeout
    answered: List[Dict[str, Any]] = []
    while True:
        ex = st2.execution(root_id)
        if ex["status"] in COMPLETED:
            ex["_gates"] = answered
            return ex
        for inquiry in [i for i in st2.inquiries()
                        if root_id in (i["top"], i["batch"], i.get("batch_top"))]:
            if inquiry["task"] is None or inquiry["id"] in [a["id"] for a in answered]:
                # not yet known which gate it is, or answered and not yet out of the list:
                # looked at again on the next round, never answered blindly or twice
                continue
            verdict = decide(inquiry)
            if verdict is None:
                ex["_gates"] = answered
                return ex
            if wrong_user:
                refused = st2.respond(inquiry["id"], verdict, wrong_user, check=False)
                assert refused.returncode != 0 and "permission to respond" in (
                    refused.stdout + refused.stderr), (
                    "%s answered gate %s that names %s: %s" % (
                        wrong_user, inquiry["task"], inquiry["users"], refused.stdout))
            if respond is None:
                st2.respond(inquiry["id"], verdict, gate_user(inquiry))
            else:
                respond(inquiry, verdict, gate_user(inquiry))
            answered.append(dict(inquiry, approved=verdict))
        if time.monotonic() > deadline:
            raise AssertionError("execution %s still %s after %.0fs" % (root_id, ex["status"],
                                                                        timeout))
        time.sleep(1)


# --------------------------------------------------------------------------- the README

def readme_blocks(section: str) -> List[List[str]]:
    """The shell code blocks of a README section (## heading), one command per line."""
    text = README.read_text()
    match = re.search(r"^## %s\n(.*?)(?=^## )" % re.escape(section), text, re.S | re.M)
    assert match, "README has no section %r" % section
    blocks = re.findall(r"^```\n(.*?)^```", match.group(1), re.S | re.M)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


def command_words(line: str, values: Dict[str, str]) -> List[str]:
    """A README command line as argv: comments dropped, placeholders (`<...>`, quoted or not,
    and the checkout path) replaced by VALUES; a placeholder left without a value is an
    error."""
    for placeholder, value in values.items():
        if placeholder.startswith("<"):
            quoted = shlex.quote(value)
            line = line.replace("'%s'" % placeholder, quoted).replace(placeholder, quoted)
        else:
            line = line.replace(placeholder, value)
    words = shlex.split(line, comments=True)
    left = re.findall(r"<[^<>]+>", " ".join(words))
    assert not left, "no value for %s in: %s" % (left, line)
    return words


# --------------------------------------------------------------------------- a loopback proxy

class TcpProxy:
    """127.0.0.1:<port> -> 127.0.0.1:<target>: the broker as the sensor sees it. ``cut()``
    closes the listener and every connection (the broker is unreachable: connection refused),
    ``restore()`` listens again on the same port."""

    def __init__(self, target: int) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._lock = threading.Lock()
        self._conns: List[socket.socket] = []
        self._listener: Optional[socket.socket] = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def wait_connected(self, timeout: float = 60) -> None:
        """Until a client (the sensor) is connected through the proxy again."""
        deadline = time.monotonic() + timeout
        while not self._conns:
            assert time.monotonic() < deadline, "nothing reconnected to port %d" % self.port
            time.sleep(0.2)

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            _close(listener)          # shutdown() first: it wakes the thread blocked in accept()
        for conn in conns:
            _close(conn)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    _close(client)
                    _close(upstream)
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    _close(src)
    _close(dst)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def st2_facts() -> Iterator[Dict[str, Any]]:
    """The running StackStorm sandbox (st2.json facts)."""
    was_up = _st2_sandbox("status").returncode == 0
    up = _st2_sandbox("up")
    assert up.returncode == 0, "StackStorm sandbox did not come up:\n%s\n%s" % (
        up.stdout[-3000:], up.stderr[-3000:])
    path = _st2_sandbox("config").stdout.strip()
    yield json.loads(Path(path).read_text())
    if not was_up and not os.environ.get("CEPH_MIGRATE_KEEP_SANDBOX"):
        _st2_sandbox("down", "--wipe")


@pytest.fixture(scope="session")
def broker_proxies(openstack_facts) -> Dict[str, TcpProxy]:
    """One proxy per cloud in front of the sandbox broker, for the sensors' config."""
    return {role: TcpProxy(openstack_facts["clouds"][cloud]["rabbit"]["port"])
            for role, cloud in (("source", "pa1"), ("destination", "ct1"))}


def pack_source() -> str:
    """What `st2 pack install file://...` gets: the checkout itself when it is clean (a git
    clone of it is what StackStorm installs), otherwise a copy of its working tree, so that a
    developer's uncommitted changes are what is tested."""
    status = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"],
                            capture_output=True, text=True)
    if status.returncode == 0 and not status.stdout.strip():
        return str(REPO)
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard",
                            "-z"], capture_output=True, text=True, check=True).stdout
    target = Path(tempfile.mkdtemp(prefix="ceph_migrate-pack-")) / "ceph_migrate"
    for name in filter(None, files.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
    return str(target)


@pytest.fixture(scope="session")
def st2_pack(st2_facts, full_config, broker_proxies) -> Dict[str, Any]:
    """The pack installed and configured in StackStorm by the README's "Install in StackStorm"
    commands, run as written: placeholders get the sandbox's values, and the `$EDITOR` line is
    the operator's edit (the sandbox's config, shaped like the example, secrets in encrypted
    datastore keys). Returns the St2 CLI, the config and the secrets."""
    sys.path.insert(0, str(REPO))
    from sandbox.pack_config import st2_config

    st2 = St2(st2_facts)
    config, secrets = st2_config(APPROVALS)
    for role, proxy in broker_proxies.items():
        config["%s_notifications" % role]["port"] = proxy.port
    config["sensors"] = {"mirror_poll_interval": 5, "stall_seconds": 120,
                         "fallback_poll_interval": 5, "max_backoff": 5}
    install = readme_blocks("Install in StackStorm")[0]
    values = {"/path/to/ceph_migrate": pack_source()}
    ran, stored = [], set()
    for line in install:
        words = shlex.split(line, comments=True)
        if words[:1] == ["$EDITOR"]:
            Path(words[1]).write_text(yaml.safe_dump(config, sort_keys=False))
            ran.append(words)
            continue
        if words[:3] == ["st2", "key", "set"]:
            assert words[3] in secrets, "README stores %s, which the config does not read" % (
                words[3])
            values[words[4]] = secrets[words[3]]
            stored.add(words[3])
        argv = command_words(line, values)
        if argv[0] == "st2":
            argv[0] = st2_facts["st2"]
        res = st2.shell(argv, timeout=900)
        assert res.returncode == 0, "README command failed: %s\n%s\n%s" % (
            line, res.stdout[-3000:], res.stderr[-3000:])
        ran.append(argv)
    assert stored == set(secrets), "README does not store %s" % sorted(set(secrets) - stored)
    return {"st2": st2, "config": config, "secrets": secrets, "ran": ran}
