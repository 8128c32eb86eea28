"""Test doubles for the services StackStorm hands to actions and sensors.

They keep st2's method names, keyword arguments and key naming, and are STRICTER where st2 would
silently do the wrong thing in production, so such code fails in tests instead:

* ``set_value`` with a non-str value raises ValueError. st2 3.8/3.9 calls ``str(value)`` before
  storing, so a dict comes back from ``get_value`` as its Python repr (not JSON) and an int as a
  str: storing anything but a str is always a bug (json.dumps it first).
* ``dispatch`` of an unknown trigger, or of a payload that does not match the trigger type's
  ``payload_schema``, raises AssertionError. st2 (``validate_trigger_payload = True``) logs a
  warning and DROPS the trigger instance, which no test would notice.
* A value stored with ``encrypt=True`` reads back as opaque ciphertext unless ``decrypt=True``.

Only the standard library, PyYAML, jsonschema and the runner's ``st2_schema`` are used:
``st2_load_check.py`` loads this module inside a process whose sys.path mimics StackStorm's.
"""
import binascii
import copy
import glob
import json
import logging
import os
import time

import jsonschema
import yaml

from runner.st2_schema import validate_like_st2

__all__ = [
    "SYSTEM_SCOPE",
    "KeyValuePair",
    "DatastoreServiceDouble",
    "ActionServiceDouble",
    "SensorServiceDouble",
    "load_trigger_types",
]

SYSTEM_SCOPE = "system"
DATASTORE_KEY_SEPARATOR = ":"


class KeyValuePair(object):
    """What ``list_values`` returns per item (st2client's KeyValuePair has these attributes)."""

    def __init__(self, name, value, secret=False, ttl=None, scope=SYSTEM_SCOPE):
        self.id = name
        self.name = name
        self.value = value
        self.secret = secret
        self.encrypted = secret
        self.ttl = ttl
        self.scope = scope

    def __repr__(self):
        return "KeyValuePair(name=%r, value=%r, secret=%r, ttl=%r)" % (
            self.name, "********" if self.secret else self.value, self.secret, self.ttl)


def _ciphertext(value):
    """A stand-in for st2's ciphertext: uppercase hex, never equal to the plaintext."""
    return binascii.hexlify(("st2-encrypted:" + value).encode("utf-8")).decode("ascii").upper()


class DatastoreServiceDouble(object):
    """In-memory datastore with st2's key naming: local keys are ``<pack>.<Class>:<name>``.

    ``clock`` (seconds, like time.time) lets tests expire ttl'd keys without sleeping.
    """

    def __init__(self, pack_name, class_name, logger=None, clock=time.time,
                 api_username="admin"):
        self._pack_name = pack_name
        self._class_name = class_name
        self._logger = logger or logging.getLogger("st2_doubles.datastore")
        self._clock = clock
        self._username = api_username
        # full key name -> (KeyValuePair holding the plaintext, expiry timestamp or None)
        self._items = {}

    # -- key naming, as st2's BaseDatastoreService ------------------------------------------
    def local_key_prefix(self):
        """``<pack>.<Class>:`` - the namespace of ``local=True`` keys."""
        return "%s.%s%s" % (self._pack_name, self._class_name, DATASTORE_KEY_SEPARATOR)

    def full_key_name(self, name, local=True):
        return self.local_key_prefix() + name if local else name

    @staticmethod
    def _check_scope(scope):
        if scope != SYSTEM_SCOPE:
            raise ValueError("Scope %s is unsupported." % scope)

    def _purge_expired(self):
        now = self._clock()
        for key in [k for k, (_, expiry) in self._items.items()
                    if expiry is not None and expiry <= now]:
            del self._items[key]

    # -- the public methods actions and sensors call ----------------------------------------
    def get_user_info(self):
        return {"username": self._username,
                "rbac": {"is_admin": True, "enabled": True, "roles": ["admin"]},
                "authentication": {"method": "authentication token", "location": "header"}}

    def list_values(self, local=True, prefix=None, limit=None, offset=0):
        self._purge_expired()
        if local:
            key_prefix = self.local_key_prefix() + (prefix or "")
        else:
            key_prefix = prefix or ""
        names = sorted(k for k in self._items if k.startswith(key_prefix))
        names = names[offset or 0:]
        if limit:
            names = names[:limit]
        result = []
        for name in names:
            kvp = copy.copy(self._items[name][0])
            if kvp.secret:
                kvp.value = _ciphertext(kvp.value)
            result.append(kvp)
        return result

    def get_value(self, name, local=True, scope=SYSTEM_SCOPE, decrypt=False):
        self._check_scope(scope)
        self._purge_expired()
        entry = self._items.get(self.full_key_name(name, local))
        if entry is None:
            return None
        kvp = entry[0]
        if kvp.secret and not decrypt:
            return _ciphertext(kvp.value)
        return kvp.value

    def set_value(self, name, value, ttl=None, local=True, scope=SYSTEM_SCOPE, encrypt=False):
        self._check_scope(scope)
        if not isinstance(value, str):
            raise ValueError(
                "Datastore values must be str, got %s for key %r: st2 would store str(value), "
                "so it would read back as %r. Serialise it (json.dumps) first."
                % (type(value).__name__, name, str(value)))
        if ttl and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1):
            raise ValueError("ttl must be a positive integer number of seconds, got %r" % (ttl,))
        full_name = self.full_key_name(name, local)
        expiry = self._clock() + ttl if ttl else None
        self._items[full_name] = (KeyValuePair(full_name, value, secret=bool(encrypt),
                                               ttl=ttl or None), expiry)
        return True

    def delete_value(self, name, local=True, scope=SYSTEM_SCOPE):
        self._check_scope(scope)
        self._purge_expired()
        return self._items.pop(self.full_key_name(name, local), None) is not None


class _DatastoreMethods(object):
    """Delegation of the datastore methods, with the signatures of st2's service objects."""

    @property
    def datastore_service(self):
        return self._datastore_service

    def get_user_info(self):
        return self._datastore_service.get_user_info()

    def list_values(self, local=True, prefix=None, limit=None, offset=None):
        return self._datastore_service.list_values(local=local, prefix=prefix, limit=limit,
                                                   offset=offset)

    def get_value(self, name, local=True, scope=SYSTEM_SCOPE, decrypt=False):
        return self._datastore_service.get_value(name=name, local=local, scope=scope,
                                                 decrypt=decrypt)

    def set_value(self, name, value, ttl=None, local=True, scope=SYSTEM_SCOPE, encrypt=False):
        return self._datastore_service.set_value(name=name, value=value, ttl=ttl, local=local,
                                                 scope=scope, encrypt=encrypt)

    def delete_value(self, name, local=True, scope=SYSTEM_SCOPE):
        return self._datastore_service.delete_value(name=name, local=local, scope=scope)


class _WrapperInfo(object):
    """What st2's Action base class reads from ``action_service._action_wrapper``."""

    def __init__(self, pack, class_name, log_level):
        self._pack = pack
        self._class_name = class_name
        self._log_level = log_level


class ActionServiceDouble(_DatastoreMethods):
    """Stands for the ``action_service`` the Python runner gives an action."""

    def __init__(self, pack_name, class_name, log_level="debug", clock=time.time):
        self._action_wrapper = _WrapperInfo(pack_name, class_name, log_level)
        self._datastore_service = DatastoreServiceDouble(pack_name, class_name, clock=clock)


def load_trigger_types(pack_dir, pack_name=None):
    """Map ``<pack>.<name>`` -> payload_schema for every trigger type in ``<pack>/sensors/*.yaml``.

    A trigger type without payload_schema maps to {} (st2 does not validate its payloads).
    """
    if pack_name is None:
        with open(os.path.join(pack_dir, "pack.yaml")) as handle:
            meta = yaml.safe_load(handle) or {}
        pack_name = meta.get("ref") or meta.get("name")
    result = {}
    paths = sorted(glob.glob(os.path.join(pack_dir, "sensors", "*.yaml"))
                   + glob.glob(os.path.join(pack_dir, "sensors", "*.yml")))
    for path in paths:
        with open(path) as handle:
            meta = yaml.safe_load(handle) or {}
        for trigger_type in meta.get("trigger_types") or []:
            ref = "%s.%s" % (pack_name, trigger_type["name"])
            result[ref] = trigger_type.get("payload_schema") or {}
    return result


class SensorServiceDouble(_DatastoreMethods):
    """Stands for the ``sensor_service`` the sensor container gives a sensor.

    ``trigger_types`` maps trigger ref -> payload_schema; by default it is read from the pack's
    ``sensors/*.yaml``. Every accepted dispatch is appended to ``dispatched_triggers`` as
    ``{"trigger", "payload", "trace_tag"}``.
    """

    def __init__(self, pack_name, class_name, pack_dir=None, trigger_types=None,
                 clock=time.time):
        if trigger_types is None:
            if pack_dir is None:
                raise ValueError("give pack_dir (to read sensors/*.yaml) or trigger_types")
            trigger_types = load_trigger_types(pack_dir, pack_name)
        self._pack_name = pack_name
        self._class_name = class_name
        self.trigger_types = dict(trigger_types)
        self.dispatched_triggers = []
        self._logger = logging.getLogger("SensorWrapper.%s.%s" % (pack_name, class_name))
        self._datastore_service = DatastoreServiceDouble(pack_name, class_name, clock=clock,
                                                         api_username="sensor_service")

    def get_logger(self, name):
        """A stdlib logger under the sensor wrapper's, as st2 returns (caplog sees it)."""
        logger = logging.getLogger("%s.%s" % (self._logger.name, name))
        logger.propagate = True
        return logger

    def dispatch(self, trigger, payload=None, trace_tag=None):
        self._check(trigger, payload)
        self.dispatched_triggers.append(
            {"trigger": trigger, "payload": copy.deepcopy(payload), "trace_tag": trace_tag})

    def dispatch_with_context(self, trigger, payload=None, trace_context=None):
        self._check(trigger, payload)
        self.dispatched_triggers.append(
            {"trigger": trigger, "payload": copy.deepcopy(payload),
             "trace_tag": getattr(trace_context, "trace_tag", None),
             "trace_context": trace_context})

    def payloads(self, trigger=None):
        """Payloads dispatched so far, optionally only those of one trigger ref."""
        return [item["payload"] for item in self.dispatched_triggers
                if trigger is None or item["trigger"] == trigger]

    def _check(self, trigger, payload):
        if not isinstance(trigger, str):
            raise AssertionError("dispatch() needs the trigger ref as a str ('<pack>.<name>'), "
                                 "got %r" % (trigger,))
        if trigger not in self.trigger_types:
            raise AssertionError(
                "st2 would drop this trigger: trigger type %r does not exist (known: %s)"
                % (trigger, ", ".join(sorted(self.trigger_types)) or "none"))
        try:
            json.dumps(payload, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise AssertionError("payload of %r is not JSON-serialisable (%s): %r"
                                 % (trigger, exc, payload))
        schema = self.trigger_types[trigger]
        if not schema:
            return
        try:
            validate_like_st2(payload, schema)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "payload"
            raise AssertionError(
                "st2 would drop this trigger: payload of %r fails its payload_schema at %s: %s"
                % (trigger, where, exc.message))
