"""What ceph_sandbox.py and openstack_sandbox.py share: commands, files, waiting, the CLI, and
the processes they start.

Both scripts start long-running services detached from the terminal, record each one in
<state>/pids as a line 'PID NAME GROUP' (GROUP: the Ceph cluster or the cloud it belongs to) and
later signal exactly those PIDs, each only after checking that it still runs the program that
was started - never anything found by process name. Stdlib only, Python 3.8+, no shell.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import (Any, Callable, ClassVar, Dict, Iterator, List, Mapping, Optional, Sequence,
                    Tuple,
                    Type, TypeVar)

# Set when a step of `up` fails, so that steps running in parallel stop waiting and no further
# service starts. One per process: openstack_sandbox's `up` may run ceph_sandbox's `up` first.
ABORT = threading.Event()
LOCKED_COMMANDS = ("install", "up", "down")   # the commands that change a state dir
KILL_WAIT = 5.0   # seconds SIGKILLed processes get to disappear before we go on

_PIDS_LOCK = threading.Lock()
_CHILDREN: Dict[int, subprocess.Popen] = {}   # Popen objects of our own children, for reaping


class SandboxError(Exception):
    """A sandbox operation failed; the message says what and where to look."""


# --------------------------------------------------------------------------- output, commands

class Clock:
    """Prints '[  1.23s] message' lines; shared by threads, hence the lock."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def log(self, msg: str) -> None:
        with self._lock:
            print("[%6.2fs] %s" % (self.elapsed(), msg), flush=True)


def run(argv: Sequence[str], timeout: float = 60.0, env: Optional[Dict[str, str]] = None,
        check: bool = True, stdin_text: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run argv (never through a shell), capture its output, raise SandboxError on failure.
    STDIN_TEXT is fed to its standard input (secrets stay off the command line)."""
    stdin = {"input": stdin_text} if stdin_text is not None else {"stdin": subprocess.DEVNULL}
    try:
        res = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                             env=env, **stdin)
    except subprocess.TimeoutExpired:
        raise SandboxError("timed out after %.0fs: %s" % (timeout, " ".join(argv)))
    except OSError as exc:
        raise SandboxError("cannot run %s: %s" % (argv[0], exc))
    if check and res.returncode != 0:
        raise SandboxError("%s failed (rc %d): %s" % (" ".join(argv), res.returncode,
                                                      (res.stderr or res.stdout).strip()[-2000:]))
    return res


def run_logged(argv: Sequence[str], log_path: str, what: str, timeout: float,
               env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """run(), keeping the whole output in LOG_PATH: one-off steps (mkfs, db syncs) print more
    than an error message can hold, and a failure is diagnosed from that file later."""
    res = run(argv, timeout=timeout, env=env, check=False)
    with open(log_path, "w") as fh:
        fh.write(res.stdout + res.stderr)
    if res.returncode != 0:
        raise SandboxError("%s failed (rc %d, output in %s): %s" % (
            what, res.returncode, log_path, (res.stderr or res.stdout).strip()[-1500:]))
    return res


def json_or_none(res: subprocess.CompletedProcess) -> Any:
    """Parsed stdout of a --format json call, None when the call failed or printed garbage."""
    if res.returncode != 0:
        return None
    try:
        return json.loads(res.stdout)
    except ValueError:
        return None


def apt_get_install(packages: Sequence[str], missing: Callable[[], List[str]],
                    options: Sequence[str] = ()) -> None:
    """apt-get update and install, non-interactively. MISSING() must then come back empty, so
    that a package which installs but does not provide what we need fails here, not later."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-q"], timeout=600, env=env)
    run(["apt-get", "install", "-y", "-q"] + list(options) + list(packages), timeout=1800,
        env=env)
    still = missing()
    if still:
        raise SandboxError("still missing after apt-get install: %s" % " ".join(still))


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_call(method: str, url: str, body: Any = None, token: Optional[str] = None,
              timeout: float = 15.0, headers: Optional[Dict[str, str]] = None
              ) -> Tuple[int, Any, Any]:
    """(status, headers, parsed JSON or text); status 0 when nothing answered. No proxies.
    TOKEN goes out as X-Auth-Token (Keystone and StackStorm both read it)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with _NO_PROXY.open(req, timeout=timeout) as resp:
            status, got, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        status, got, raw = exc.code, exc.headers, exc.read()
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        return 0, None, str(exc)
    try:
        return status, got, json.loads(raw) if raw else None
    except ValueError:
        return status, got, raw.decode(errors="replace")


# --------------------------------------------------------------------------- files

@dataclass(frozen=True)
class StateDir:
    """The state dir of one sandbox: its marker (which lets wipe_state_dir delete it), the pids
    file, the generated passwords; ``path()`` for the rest."""
    root: str
    MARKER: ClassVar[str] = ".ceph_migrate_sandbox"

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    @property
    def marker(self) -> str:
        return self.path(self.MARKER)

    @property
    def pids(self) -> str:
        return self.path("pids")

    @property
    def passwords(self) -> str:
        return self.path("passwords.json")


def write_file(path: str, text: str, mode: int = 0o644) -> None:
    """Write atomically so that readers never see half a file."""
    tmp = "%s.tmp.%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def read_json(path: str) -> Any:
    """Parsed JSON file, None when it is missing or unreadable: generated files that a previous
    run may or may not have left."""
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def state_lock(root: str) -> Iterator[None]:
    """Serialise install/up/down of one state dir (test workers may call `up` at the same time).
    The lock file sits beside the state dir, which `down --wipe` deletes; it is not named
    <state dir>.lock, so a `flock <state dir>.lock` around a whole test run cannot deadlock the
    `up` inside it. It is opened read-only: flock needs no write access, so one left by root
    (setup.sh runs `install` as root) locks nobody else out."""
    os.makedirs(os.path.dirname(root), exist_ok=True)
    fd = os.open(root + ".state-lock", os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)   # releases the lock


def claim_state_dir(root: str, marker: str, pids: str, script: str) -> None:
    """Create the state dir with its MARKER file (which lets wipe_state_dir delete it later)
    and an empty PIDS file: nothing of this run has started yet."""
    os.makedirs(root, exist_ok=True)
    write_file(marker, "state dir of ceph_migrate sandbox/%s\n" % script)
    write_file(pids, "")


def wipe_state_dir(root: str, marker: str, what: str) -> None:
    """Delete ROOT, but only if it holds MARKER (so one of our scripts made it) or is empty:
    a mistyped state dir variable must not remove someone's data. WHAT names the owner."""
    if not os.path.isdir(root):
        return
    if os.path.exists(marker):
        shutil.rmtree(root)
    elif not os.listdir(root):
        os.rmdir(root)
    else:
        raise SandboxError("%s is not %s state dir (no %s): refusing to delete it"
                           % (root, what, os.path.basename(marker)))


# --------------------------------------------------------------------------- running in parallel

def in_parallel(funcs: Sequence[Callable[[], Any]]) -> List[Any]:
    """Run callables in threads, return their results in order, re-raise the first error."""
    results: List[Any] = [None] * len(funcs)
    errors: List[BaseException] = []

    def call(i: int, fn: Callable[[], Any]) -> None:
        try:
            results[i] = fn()
        except BaseException as exc:  # noqa: B902 - handed to the caller below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i, fn), daemon=True)
               for i, fn in enumerate(funcs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


@contextlib.contextmanager
def abort_others() -> Iterator[None]:
    """Around one of several parallel start-up steps: when it fails (^C too), set ABORT so that
    the others stop waiting instead of running into their own timeouts."""
    try:
        yield
    except BaseException:
        ABORT.set()
        raise


def wait_for(check: Callable[[], Tuple[bool, str]], timeout: float, what: str,
             interval: float = 0.5) -> None:
    """Poll check() until it returns (True, _); raise with its last reason on timeout, and at
    once when ABORT is set (a parallel step failed: waiting on would only delay the error)."""
    deadline = time.monotonic() + timeout
    while True:
        if ABORT.is_set():
            raise SandboxError("%s: aborted (another step failed)" % what)
        ok, reason = check()
        if ok:
            return
        if time.monotonic() > deadline:
            raise SandboxError("%s: not ready after %.0fs (%s)" % (what, timeout, reason))
        time.sleep(interval)


# --------------------------------------------------------------------------- recorded processes

@dataclass(frozen=True)
class Recorded:
    """One line of a pids file: 'PID NAME GROUP'."""
    pid: int
    name: str
    group: str

    @property
    def kind(self) -> str:
        """NAME without its instance suffix ('ceph-osd.0' -> 'ceph-osd', 'keystone' stays):
        what stop tiers and grace times are keyed by."""
        return self.name.split(".", 1)[0]

    @property
    def label(self) -> str:
        return "%d(%s/%s)" % (self.pid, self.group, self.name)


R = TypeVar("R", bound=Recorded)
# matches(recorded, argv): does this command line belong to the recorded process? Checked
# before every signal, so that a PID reused by an unrelated process is never hit.
Matcher = Callable[[Any, List[str]], bool]


def read_recorded(path: str, cls: Type[R]) -> List[R]:
    """The recorded processes; a missing or empty pids file means nothing runs."""
    try:
        with open(path) as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return []
    recs = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0].isdigit():
            recs.append(cls(int(parts[0]), parts[1], parts[2]))
    return recs


def describe(recs: Sequence[Recorded]) -> str:
    """'PID(GROUP/NAME) ...' as the scripts print them."""
    return " ".join(r.label for r in recs)


def start_recorded(pids: str, cls: Type[R], group: str, name: str, argv: Sequence[str],
                   log_path: str, cwd: str, extra_env: Optional[Dict[str, str]] = None) -> R:
    """Start argv in its own session, output appended to LOG_PATH, and record it in PIDS.

    Popen execs argv itself (no shell, no wrapper), so its pid is the service's own PID. The
    new session detaches it from our terminal (it survives this script and ^C) and makes it
    the leader of a process group in which group_members() finds its forks. Parallel start-up
    threads append to PIDS under one lock."""
    if ABORT.is_set():
        raise SandboxError("aborted before starting %s/%s" % (group, name))
    env = dict(os.environ)
    env.update(extra_env or {})
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with _PIDS_LOCK:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(list(argv), cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, env=env)
        _CHILDREN[proc.pid] = proc
        with open(pids, "a") as fh:
            fh.write("%d %s %s\n" % (proc.pid, name, group))
    return cls(proc.pid, name, group)


def drop_recorded(pids: str, pid: int) -> None:
    """Forget a recorded process that has exited (before starting its replacement)."""
    with _PIDS_LOCK:
        with open(pids) as fh:
            lines = fh.read().splitlines()
        with open(pids, "w") as fh:
            fh.writelines(line + "\n" for line in lines if line.split(" ", 1)[0] != str(pid))


def proc_status(pid: int) -> Dict[str, str]:
    """Fields of /proc/PID/status, {} when PID is gone."""
    try:
        with open("/proc/%d/status" % pid) as fh:
            return dict(line.split(":", 1) for line in fh.read().splitlines() if ":" in line)
    except OSError:
        return {}


def live_argv(pid: int) -> Optional[List[str]]:
    """Command line of PID if it is a live process, else None. /proc/PID and kill -0 also
    accept zombies and other processes' thread ids; after a PID wrap-around either could pass
    for one of ours."""
    fields = proc_status(pid)
    if (fields.get("Tgid", "").strip() != str(pid)
            or fields.get("State", "").split()[:1] in (["Z"], ["X"])):
        return None
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            return [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return None


def _reap(pid: int) -> bool:
    """Collect PID if it is our exited child; True when it was (a zombie answers kill -0)."""
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is not None
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == pid


def is_alive(rec: Recorded, matches: Matcher) -> bool:
    """The recorded PID runs and is still the program we started."""
    if _reap(rec.pid):
        return False
    argv = live_argv(rec.pid)
    return argv is not None and matches(rec, argv)


def all_alive(recs: Sequence[Recorded], matches: Matcher) -> bool:
    """Something is recorded and all of it runs: the cheap 'is it up' (no health round trip)."""
    return bool(recs) and all(is_alive(r, matches) for r in recs)


def group_members(pgid: int) -> List[int]:
    """Live PIDs of process group PGID in session PGID (our services lead both: pgid == PID)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 3 and fields[2] == str(pgid) and fields[3] == str(pgid) \
                and fields[0] != "Z":
            members.append(int(entry))
    return members


def rss_mib(pid: int) -> float:
    """RSS of a service's whole process group (uWSGI master and workers, cinder-volume and its
    backend child, StackStorm's sensor container and its sensors), in MiB."""
    total = 0
    for member in group_members(pid) or [pid]:
        value = proc_status(member).get("VmRSS", "0 kB").split()[0]
        total += int(value) if value.isdigit() else 0
    return round(total / 1024.0, 1)


def leftovers(rec: Recorded, matches: Matcher) -> List[int]:
    """Members of REC's own process group that still run its program: uWSGI workers,
    cinder-volume's backend child. Such a child outlives its parent when the parent exits
    first ('Parent process has died unexpectedly, exiting' and it hangs)."""
    found = []
    for member in group_members(rec.pid):
        argv = live_argv(member)
        if argv is not None and matches(rec, argv):
            found.append(member)
    return found


def _signal(recs: Sequence[Recorded], sig: int, matches: Matcher) -> None:
    for rec in recs:
        if is_alive(rec, matches):
            try:
                os.kill(rec.pid, sig)
            except ProcessLookupError:
                pass


def _wait_gone(recs: Sequence[R], timeout: float, matches: Matcher) -> List[R]:
    """Wait up to TIMEOUT for the processes to exit; return those still alive."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [r for r in recs if is_alive(r, matches)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _kill(recs: Sequence[Recorded], matches: Matcher) -> None:
    """SIGKILL what still runs, and the leftovers in its process group; wait until it is gone
    so that a following wipe or restart does not race the dying processes."""
    _signal(recs, signal.SIGKILL, matches)
    for rec in recs:
        for member in leftovers(rec, matches):
            try:
                os.kill(member, signal.SIGKILL)
            except ProcessLookupError:
                pass
    _wait_gone(recs, KILL_WAIT, matches)


def stop_recorded(recs: Sequence[Recorded], tiers: Sequence[Sequence[str]],
                  grace: Mapping[str, float], matches: Matcher,
                  log: Optional[Callable[[str], None]] = None) -> Dict[str, float]:
    """Stop exactly these processes, tier by tier (kinds in TIERS; the order matters because a
    service may hang on shutdown once what it talks to is gone): SIGTERM, up to the tier's
    GRACE seconds to exit, then SIGKILL (said through LOG) for the rest and for leftovers in
    their process groups. Processes of no tier are SIGKILLed last; no tiers at all means
    SIGKILL at once. Returns the seconds each tier took."""
    took: Dict[str, float] = {}
    for tier in tiers:
        members = [r for r in recs if r.kind in tier]
        if not members:
            continue
        t0 = time.monotonic()
        _signal(members, signal.SIGTERM, matches)
        left = _wait_gone(members, max(grace.get(k, 5.0) for k in tier), matches)
        if left and log:
            log("SIGKILL %s" % describe(left))
        _kill(members, matches)
        took["+".join(tier)] = round(time.monotonic() - t0, 1)
    others = [r for r in recs if not any(r.kind in t for t in tiers)]
    if others:
        _kill(others, matches)
    return took


@contextlib.contextmanager
def stopped_on_failure(clock: Clock, message: str, stop: Callable[[], Any],
                       pids: str) -> Iterator[None]:
    """Around the start-up part of `up`: ABORT is cleared first; on any failure (^C too) it is
    set, MESSAGE logged, STOP() stops what was started and the pids file is kept as
    pids.failed (nothing runs any more, the list stays for the post-mortem)."""
    ABORT.clear()
    try:
        with abort_others():
            yield
    except BaseException:
        clock.log(message)
        stop()
        os.replace(pids, pids + ".failed")
        raise


def stop_listed(recs: Sequence[Recorded], pids: str,
                stop: Callable[[], Optional[Dict[str, float]]]) -> None:
    """`down`: STOP() the recorded RECS, keep the list as pids.stopped (an absent pids file
    means nothing runs) and say what was stopped, with the tiers' times when STOP gives them."""
    if not recs:
        print("nothing to stop (%s)" % pids)
        return
    t0 = time.monotonic()
    took = stop()
    os.replace(pids, pids + ".stopped")
    tiers = " (%s)" % ", ".join("%s %.1fs" % kv for kv in took.items()) if took else ""
    print("stopped in %.1fs%s: %s" % (time.monotonic() - t0, tiers, describe(recs)))


# --------------------------------------------------------------------------- status and CLI

def conclude(report: Dict[str, Any], problems: Sequence[str]) -> Dict[str, Any]:
    """Set report's 'ok' (no problems) and 'reason' (the problems, or 'ok')."""
    report["ok"] = not problems
    report["reason"] = "; ".join(problems) or "ok"
    return report


def verdict(report: Dict[str, Any]) -> str:
    """Last line of a human status summary."""
    return "OK" if report["ok"] else "NOT OK: %s" % report["reason"]


def cli_parser(description: str, install: str, up: str, down: str, config: str,
               down_flags: Mapping[str, str]) -> Tuple[argparse.ArgumentParser, Any]:
    """Parser with the subcommands both sandboxes have (help texts as given; DOWN_FLAGS are
    --options of `down`); returns it with its subparsers, for hidden extras."""
    parser = argparse.ArgumentParser(description=description)
    sub = parser.add_subparsers(dest="cmd", metavar="{install,up,down,status,config}")
    sub.required = True
    sub.add_parser("install", help=install)
    sub.add_parser("up", help=up)
    d = sub.add_parser("down", help=down)
    for flag, text in down_flags.items():
        d.add_argument(flag, action="store_true", help=text)
    s = sub.add_parser("status", help="health summary; exit 0 when all is healthy")
    s.add_argument("--json", action="store_true", help="print JSON")
    sub.add_parser("config", help=config)
    return parser, sub


def run_command(cmd: str, state_dir: str, commands: Mapping[str, Callable[[], Any]]) -> int:
    """Exit code of CLI command CMD: what its function returns if that is an int, else 0.
    install/up/down hold the state dir's lock; a SandboxError is one 'error: ...' line on
    stderr and exit 1, ^C exits 130."""
    try:
        if cmd in LOCKED_COMMANDS:
            with state_lock(state_dir):
                rc = commands[cmd]()
        else:
            rc = commands[cmd]()
        return rc if isinstance(rc, int) else 0
    except SandboxError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def print_status(report: Dict[str, Any], as_json: bool,
                 summary: Callable[[Dict[str, Any]], str]) -> int:
    """`status`: JSON or the human summary; exit 0 only when all is healthy."""
    print(json.dumps(report, indent=2) if as_json else summary(report))
    return 0 if report["ok"] else 1


def print_config(path: Optional[str], not_up: str) -> int:
    """`config`: the generated file's path, or NOT_UP on stderr and exit 1."""
    if path is None:
        print(not_up, file=sys.stderr)
        return 1
    print(path)
    return 0
