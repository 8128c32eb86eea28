"""Typed errors. Every message is meant for an operator: it names the thing and what to do."""
from typing import Any, Dict, Optional, Sequence


class CephMigrateError(Exception):
    """Base of every error the pack raises on purpose."""


class ConfigError(CephMigrateError):
    """The pack configuration is missing something or is inconsistent."""


class InvalidName(CephMigrateError, ValueError):
    """A pool, image, snapshot or id would not be safe or valid on an rbd command line."""


class RefusedError(CephMigrateError):
    """The current state does not allow the step (nothing was changed)."""


class NotFound(CephMigrateError):
    """A pool or image does not exist."""


class PoolNotFound(NotFound):
    """The pool itself does not exist (a configuration or cluster problem, not a missing image)."""


class VerificationFailed(CephMigrateError):
    """Source and destination content differ."""


class RbdError(CephMigrateError):
    """A Ceph command failed. Carries the argv (secrets never in it) and rbd's stderr."""

    def __init__(self, argv: Sequence[str], returncode: Optional[int], stderr: str,
                 message: Optional[str] = None) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = _last_lines(stderr)
        summary = message or "command failed with exit code %s" % returncode
        super().__init__("%s: %s%s" % (" ".join(self.argv), summary,
                                       (": " + self.stderr) if self.stderr else ""))


class RbdNotFound(RbdError, NotFound):
    """rbd said ENOENT: the pool or image is missing."""


class RbdTimeout(RbdError):
    """A Ceph command did not finish within its timeout and was killed."""


class RbdStalled(RbdError):
    """A long Ceph command showed no progress for too long and was stopped."""


def _last_lines(text: str, limit: int = 6) -> str:
    """rbd prints librbd debug lines before the real error: keep the tail that explains."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return "\n".join(lines[-limit:])


class StepFailed(CephMigrateError):
    """A step made of parts failed part way: ``facts`` (the part, what was done before it)
    go into the failed execution's result beside the message."""

    def __init__(self, message: str, facts: Dict[str, Any]) -> None:
        super().__init__(message)
        self.facts = facts
