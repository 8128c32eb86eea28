"""Read-only checks of a dry run, one place for how they are run and reported."""
from typing import Any, Callable, Dict, List

from .errors import CephMigrateError


class Checklist:
    """Runs checks one after another; a failing check is recorded, never raised, so a dry run
    reports every problem at once. ``run`` returns the check's detail (True when it has none),
    or None when the check failed, so a later check can depend on an earlier one."""

    def __init__(self) -> None:
        self.checks: List[Dict[str, Any]] = []

    def run(self, name: str, check: Callable[[], Any]) -> Any:
        try:
            detail = check()
        except CephMigrateError as exc:
            self.checks.append({"check": name, "ok": False, "detail": str(exc)})
            return None
        self.checks.append({"check": name, "ok": True, "detail": detail})
        return detail if detail is not None else True

    @property
    def ok(self) -> bool:
        return all(c["ok"] for c in self.checks)

    def report(self, **extra: Any) -> Dict[str, Any]:
        return dict({"ok": self.ok, "checks": self.checks}, **extra)
