"""Strict readings of single config values.

StackStorm validates a config file against config.schema.yaml, but values it renders from the
datastore (``{{ st2kv.system.x }}``) arrive as strings after that, and the local runner reads
plain YAML: ``bool("false")`` is True (TLS verification off), ``list("ceph-admin")`` is ten
one-letter approvers, and ``float("-1") or 10`` is a poll that spins. Each value is read here
exactly once, or refused with the key's name.
"""
from typing import Any, List, Optional

from .errors import ConfigError


def flag(value: Any, key: str, default: bool = False) -> bool:
    """true/false, also as the strings a datastore value renders to."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError("%s must be true or false, got %r" % (key, value))


def number(value: Any, key: str, default: float, minimum: float,
           maximum: Optional[float] = None) -> float:
    """A number within [minimum, maximum]; absent (or empty) means the default."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ConfigError("%s must be a number, got %r" % (key, value))
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ConfigError("%s must be a number, got %r" % (key, value)) from None
    if result < minimum or (maximum is not None and result > maximum):
        bounds = ("between %s and %s" % (minimum, maximum) if maximum is not None
                  else "at least %s" % minimum)
        raise ConfigError("%s must be %s, got %r" % (key, bounds, value))
    return result


def integer(value: Any, key: str, default: int, minimum: int,
            maximum: Optional[int] = None) -> int:
    """A whole number within [minimum, maximum]; absent (or empty) means the default."""
    result = number(value, key, default, minimum, maximum)
    if result != int(result):
        raise ConfigError("%s must be a whole number, got %r" % (key, value))
    return int(result)


def names(value: Any, key: str) -> List[str]:
    """A list of non-empty names (StackStorm users, roles, exchanges); a bare string is refused
    rather than read letter by letter."""
    if value is None:
        return []
    if isinstance(value, str):
        raise ConfigError("%s must be a list, got the string %r (write [%s])"
                          % (key, value, value))
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(item, str) and item.strip() for item in value):
        raise ConfigError("%s must be a list of non-empty names, got %r" % (key, value))
    return [str(item) for item in value]
