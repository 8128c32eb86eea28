"""The one way the pack runs Ceph's command-line tools: argv lists, never a shell.

Every call carries the cluster's ``--cluster/--conf/--id/--keyring`` and ``--format json``,
has a timeout, and turns a failure into a typed error with rbd's own explanation (with any
cephx key in it hidden). A cephx key given in the config is checked, then handed to rbd as a
keyring in memory (a memfd passed to the child): never on a command line, never in a file that
a killed action could leave behind.
"""
import base64
import binascii
import fcntl
import hashlib
import json
import logging
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, TypeVar

from . import names
from .errors import ConfigError, RbdError, RbdNotFound, RbdStalled, RbdTimeout

LOG = logging.getLogger(__name__)

Runner = Callable[..., "subprocess.CompletedProcess[str]"]
T = TypeVar("T")

_ENOENT_MARKERS = ("(2) No such file or directory",)
_PROGRESS = re.compile(r"(\d+)% complete")
_EXPORT_CHUNK = 8 * 1024 * 1024
_F_SETPIPE_SZ = 1031                # fcntl.F_SETPIPE_SZ (Python 3.10+), Linux
_PIPE_BYTES = 1024 * 1024
_KEY_ECHO = re.compile(r"(type=key val=)\S+")     # what Ceph prints of a key it cannot parse
HIDDEN = "<hidden>"


@dataclass(frozen=True)
class CephCluster:
    """How to reach one Ceph cluster as one cephx user."""

    name: str
    client_id: str = "admin"
    conf: Optional[str] = None
    keyring: Optional[str] = field(default=None, repr=False)
    key: Optional[str] = field(default=None, repr=False)
    role: str = "cluster"   # "source" or "destination", for messages

    def __post_init__(self) -> None:
        names.cluster_name(self.name)
        names.client_id(self.client_id)
        if self.conf:
            names.file_path("conf", self.conf)
        if self.keyring:
            names.file_path("keyring", self.keyring)
        if self.key is not None:
            object.__setattr__(self, "key", cephx_key(self.key, self.role))

    def connection_args(self) -> List[str]:
        args = ["--cluster", self.name, "--id", self.client_id]
        if self.conf:
            args += ["--conf", self.conf]
        if self.key:
            args += ["--keyring", "/proc/self/fd/%d" % _keyring_fd(self.client_id, self.key)]
        elif self.keyring:
            args += ["--keyring", self.keyring]
        return args

    def pass_fds(self) -> Tuple[int, ...]:
        """The descriptors a child must inherit (the in-memory keyring)."""
        return (_keyring_fd(self.client_id, self.key),) if self.key else ()

    def hide(self, text: str) -> str:
        """TEXT without the key: Ceph echoes a key it cannot parse (``val=<key>``)."""
        if self.key:
            text = text.replace(self.key, HIDDEN)
        return _KEY_ECHO.sub(r"\g<1>" + HIDDEN, text)

    def describe(self) -> str:
        return "%s cluster %r" % (self.role, self.name)


def cephx_key(key: str, role: str) -> str:
    """The key as ``ceph auth get-key`` prints it (base64 of a 28-byte cephx secret), outer
    blanks dropped; anything else is refused before use, without a character of it shown."""
    key = str(key).strip()
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 28:
        raise ConfigError("the cephx key of the %s cluster is malformed (%d characters; a key is "
                          "the 40 characters `ceph auth get-key client.<id>` prints)"
                          % (role, len(key)))
    return key


_KEYRINGS: Dict[Tuple[str, str], int] = {}
_KEYRINGS_LOCK = threading.Lock()


def _keyring_fd(client_id: str, key: str) -> int:
    """A keyring in memory (memfd), made once per process and key; children reach it as
    /proc/self/fd/N. Nothing is on disk, so nothing outlives a killed action."""
    with _KEYRINGS_LOCK:
        fd = _KEYRINGS.get((client_id, key))
        if fd is None:
            fd = os.memfd_create("ceph_migrate-keyring")
            os.write(fd, ("[client.%s]\n\tkey = %s\n" % (client_id, key)).encode())
            _KEYRINGS[(client_id, key)] = fd
        return fd


class CephCli:
    """Runs one Ceph tool (``rbd`` by default) against one cluster."""

    def __init__(self, cluster: CephCluster, timeout: float = 120, program: str = "rbd",
                 runner: Runner = subprocess.run, stall_timeout: float = 0) -> None:
        self.cluster = cluster
        self.timeout = timeout
        self.program = program
        self._runner = runner
        # a long copy or export that shows no progress for this long is stopped (0: never)
        self.stall_timeout = stall_timeout

    def argv(self, args: Sequence[str], json_output: bool = True) -> List[str]:
        argv = [self.program] + self.cluster.connection_args() + [str(a) for a in args]
        return argv + (["--format", "json"] if json_output else [])

    def run(self, *args: str, timeout: Optional[float] = None) -> Any:
        """Run ``program ... --format json``; parsed JSON, or None for empty output."""
        out = self.run_text(*args, timeout=timeout, json_output=True)
        if not out.strip():
            return None
        try:
            return json.loads(out)
        except ValueError:
            raise RbdError(self._shown(args), 0, self.cluster.hide(out[:500]),
                           "output is not JSON") from None

    def run_text(self, *args: str, timeout: Optional[float] = None,
                 json_output: bool = False) -> str:
        argv = self.argv(args, json_output)
        LOG.debug("running %s", " ".join(self._shown(args)))
        try:
            proc = self._runner(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=timeout or self.timeout, check=False,
                                pass_fds=self.cluster.pass_fds())
        except subprocess.TimeoutExpired:
            raise RbdTimeout(self._shown(args), None, "",
                             "no answer within %ss (killed)" % (timeout or self.timeout)) from None
        except OSError as exc:
            raise RbdError(self._shown(args), None, self.cluster.hide(str(exc)),
                           "cannot run %s (is ceph-common installed?)" % self.program) from None
        if proc.returncode != 0:
            error = RbdNotFound if _is_enoent(proc) else RbdError
            raise error(self._shown(args), proc.returncode, self.cluster.hide(proc.stderr))
        return proc.stdout

    def run_with_progress(self, *args: str, timeout: Optional[float] = None,
                          on_progress: Callable[[float], None]) -> None:
        """Run a long rbd command (cp, deep cp, ...) and feed its "N% complete" to on_progress.

        rbd prints progress on stderr, separated by carriage returns; everything else on stderr
        is kept for the error message.
        """
        def consume(proc: "subprocess.Popen[bytes]", alive: Callable[[], None]) -> str:
            other: List[str] = []
            pending = b""

            def progress(fraction: float) -> None:
                alive()
                on_progress(fraction)
            stderr = proc.stderr
            assert stderr is not None          # _stream opens it as a pipe
            for chunk in iter(lambda: stderr.read1(4096), b""):  # type: ignore[attr-defined]
                pending += chunk
                *pieces, pending = re.split(rb"[\r\n]", pending)
                for piece in pieces:
                    _progress_or_keep(piece.decode("utf-8", "replace"), progress, other)
            _progress_or_keep(pending.decode("utf-8", "replace"), progress, other)
            return "\n".join(other)

        self._stream(args, timeout, subprocess.DEVNULL, consume)

    def export_sha256(self, spec: str, timeout: Optional[float] = None,
                      size: int = 0,
                      on_progress: Optional[Callable[[float], None]] = None) -> Tuple[str, int]:
        """SHA-256 and length of ``rbd export SPEC -`` streamed, never stored."""
        digest, length = hashlib.sha256(), [0]

        def read(stdout: IO[bytes], alive: Callable[[], None]) -> None:
            for chunk in iter(lambda: stdout.read(_EXPORT_CHUNK), b""):
                alive()
                digest.update(chunk)
                length[0] += len(chunk)
                if on_progress and size:
                    on_progress(length[0] / size)

        self.stream_stdout(["export", "--no-progress", spec, "-"], timeout, read)
        return digest.hexdigest(), length[0]

    def stream_stdout(self, args: Sequence[str], timeout: Optional[float],
                      read: Callable[[IO[bytes], Callable[[], None]], T]) -> T:
        """Run a command and hand its output, as it comes, to READ (stream, alive) -> value."""
        value: List[T] = []

        def consume(proc: "subprocess.Popen[bytes]", alive: Callable[[], None]) -> str:
            errors: List[bytes] = []
            stdout, stderr = proc.stdout, proc.stderr
            assert stdout is not None and stderr is not None
            drain = threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)
            drain.start()   # a full stderr pipe must never block the command
            try:
                value.append(read(stdout, alive))
            finally:
                proc.wait()
                drain.join()
            return b"".join(errors).decode("utf-8", "replace")

        self._stream(args, timeout, subprocess.PIPE, consume)
        return value[0]

    def export_into(self, args: Sequence[str], importer: "CephCli", import_args: Sequence[str],
                    timeout: Optional[float] = None,
                    on_bytes: Optional[Callable[[int], None]] = None,
                    tap: Optional[Callable[[bytes], None]] = None) -> int:
        """``rbd ARGS | rbd IMPORT_ARGS`` with IMPORTER's cluster, without a shell: this
        process carries the bytes between the two (counts them, and hands each piece to TAP as
        well when given). The exporter's error,
        when it failed, is the one reported; the importer's otherwise."""
        moved = [0]
        failed: List[RbdError] = []

        def carry(stdout: IO[bytes], alive: Callable[[], None]) -> None:
            sink = subprocess.Popen(importer.argv(import_args, json_output=False),
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, pass_fds=importer.cluster.pass_fds())
            into, sink_err = sink.stdin, sink.stderr
            assert into is not None and sink_err is not None        # both pipes
            _wide_pipe(into)
            errors: List[bytes] = []
            drain = threading.Thread(target=lambda: errors.append(sink_err.read()), daemon=True)
            drain.start()
            killer = threading.Timer(timeout or self.timeout, sink.kill)
            killer.start()
            try:
                read = stdout.read1  # type: ignore[attr-defined]
                for chunk in iter(lambda: read(_EXPORT_CHUNK), b""):
                    alive()
                    into.write(chunk)
                    if tap:
                        tap(chunk)
                    moved[0] += len(chunk)
                    if on_bytes:
                        on_bytes(moved[0])
                into.close()
                sink.wait()
            except BrokenPipeError:
                sink.wait()
            finally:
                killer.cancel()
                if sink.poll() is None:
                    sink.kill()
                    sink.wait()
                drain.join()
            if sink.returncode != 0:
                stderr = importer.cluster.hide(b"".join(errors).decode("utf-8", "replace"))
                failed.append(_failure(stderr)(importer._shown(import_args), sink.returncode,
                                               stderr))

        self.stream_stdout(args, timeout, carry)
        if failed:
            raise failed[0]
        return moved[0]

    def _stream(self, args: Sequence[str], timeout: Optional[float], stdout: Any,
                consume: Callable[["subprocess.Popen[bytes]", Callable[[], None]], str]
                ) -> None:
        """Run a command whose output is consumed while it runs (CONSUME calls ``alive`` on
        every sign of progress); killed after ``timeout``, or after ``stall_timeout`` seconds
        without progress (then the error says what the cluster's health reports)."""
        LOG.debug("running %s", " ".join(self._shown(args)))
        proc = subprocess.Popen(self.argv(args, json_output=False), stdin=subprocess.DEVNULL,
                                stdout=stdout, stderr=subprocess.PIPE,
                                pass_fds=self.cluster.pass_fds())
        if proc.stdout is not None:
            _wide_pipe(proc.stdout)
        killer = threading.Timer(timeout or self.timeout, proc.kill)
        killer.start()
        watchdog = _Watchdog(proc, self.stall_timeout)
        try:
            stderr = consume(proc, watchdog.alive)
            returncode = proc.wait()
        finally:
            timed_out = not killer.is_alive()
            killer.cancel()
            watchdog.stop()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if watchdog.fired and returncode != 0:
            raise RbdStalled(self._shown(args), returncode, self.cluster.hide(stderr),
                             "no progress for %ss (stopped; copy.stall_timeout); the cluster "
                             "reports: %s" % (self.stall_timeout, self.health()))
        self._check_streamed(args, returncode, self.cluster.hide(stderr), timed_out, timeout)

    def health(self) -> str:
        """What ``ceph health`` says, in one line (for errors: why did it stop?)."""
        try:
            report = CephCli(self.cluster, timeout=20, program="ceph").run("health") or {}
        except RbdError as exc:
            return "ceph health failed: %s" % exc
        checks = report.get("checks") or {}
        details = ["%s: %s" % (name, ((check.get("summary") or {}).get("message") or ""))
                   for name, check in sorted(checks.items())]
        return "; ".join([str(report.get("status", "?"))] + details)

    def _check_streamed(self, args: Sequence[str], returncode: int, stderr: str,
                        timed_out: bool, timeout: Optional[float]) -> None:
        if returncode == 0:
            return
        if timed_out:
            raise RbdTimeout(self._shown(args), returncode, stderr,
                             "no end within %ss (killed)" % (timeout or self.timeout))
        raise _failure(stderr)(self._shown(args), returncode, stderr)

    def _shown(self, args: Sequence[str]) -> List[str]:
        """What errors and logs show: the program, the cluster and the arguments."""
        return [self.program, "--cluster", self.cluster.name] + [str(a) for a in args]


def _failure(stderr: str) -> "Type[RbdError]":
    """The error a streamed command's failure is, by what it said."""
    return RbdNotFound if any(m in stderr for m in _ENOENT_MARKERS) else RbdError


def _wide_pipe(stream: IO[bytes]) -> None:
    """A pipe of _PIPE_BYTES instead of Linux's 64 KiB: a stream carried through this process
    then moves in 1 MiB reads instead of 64 KiB ones (a quarter of the time it took here)."""
    try:
        fcntl.fcntl(stream.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
    except OSError:                  # over /proc/sys/fs/pipe-max-size: keep the default
        pass


def _progress_or_keep(line: str, on_progress: Callable[[float], None],
                      other: List[str]) -> None:
    match = _PROGRESS.search(line)
    if match:
        on_progress(float(match.group(1)) / 100.0)
    elif line.strip():
        other.append(line)


def _is_enoent(proc: "subprocess.CompletedProcess[str]") -> bool:
    return proc.returncode == 2 or any(m in (proc.stderr or "") for m in _ENOENT_MARKERS)


class _Watchdog:
    """Kills PROC when ``alive`` was not called for STALL seconds (0: never)."""

    def __init__(self, proc: "subprocess.Popen[bytes]", stall: float) -> None:
        self.proc, self.stall = proc, stall
        self.last = time.monotonic()
        self.fired = False
        self._done = threading.Event()
        if stall > 0:
            threading.Thread(target=self._watch, daemon=True).start()

    def alive(self) -> None:
        self.last = time.monotonic()

    def stop(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        while not self._done.wait(min(5.0, self.stall / 4)):
            if time.monotonic() - self.last > self.stall:
                self.fired = True
                self.proc.kill()
                return
