"""What every action does around a step, kept out of the action files (no StackStorm here)."""
import functools
import logging
from typing import Any, Callable, Dict, Tuple, Union

from .errors import CephMigrateError, RbdError, StepFailed

Result = Union[Dict[str, Any], Tuple[bool, Dict[str, Any]]]


def reported(run: Callable[..., Result]) -> Callable[..., Result]:
    """Turn the pack's own errors into a failed execution with a readable result.

    StackStorm marks ``(False, result)`` as failed and shows ``result`` in the UI and in chat;
    a traceback would only bury the operator-facing message. Unexpected exceptions still raise.
    """
    @functools.wraps(run)
    def wrapper(self: Any, **params: Any) -> Result:
        try:
            return run(self, **params)
        except CephMigrateError as exc:
            logger = getattr(self, "logger", logging.getLogger(__name__))
            logger.error("%s", exc)
            error: Dict[str, Any] = {"error": str(exc), "error_type": type(exc).__name__}
            if isinstance(exc, RbdError):
                error.update(command=exc.argv, stderr=exc.stderr)
            if isinstance(exc, StepFailed):
                error.update(exc.facts)
            return False, error
    return wrapper
