"""Installed into the sandbox's OpenStack virtualenv (imported by a .pth file at interpreter
start): SQLite writers of one cloud queue for the lock instead of failing.

The services of a cloud share SQLite files. With deferred transactions, a transaction that read
first and then writes while another process committed fails at once with "database is locked"
(the busy timeout does not apply to that upgrade): cinder-api answered a volume create with 500
that way, and cinder-volume died at start. Two ways, chosen per process by
$CEPH_MIGRATE_SQLITE_BEGIN:

- unset (Keystone, Glance, Cinder): every plain BEGIN of stdlib sqlite3 becomes BEGIN
  IMMEDIATE. Only sqlite3 is touched; nothing is imported that eventlet must patch.
- "writers" (Nova, Neutron, Placement): only oslo.db's writer transactions begin IMMEDIATE,
  readers keep a deferred BEGIN. Placement opens an independent writer inside a reader in the
  same thread: with every BEGIN immediate the reader's lock blocks the writer, and the request
  waits on itself until the busy timeout. oslo.db is patched when it is imported, not before.
"""
import contextlib
import importlib.abc
import importlib.util
import os
import sqlite3
import sqlite3.dbapi2
import sys
import threading


class _Cursor(sqlite3.Cursor):
    def execute(self, sql, *args):
        if isinstance(sql, str) and sql.strip().upper() == "BEGIN":
            sql = "BEGIN IMMEDIATE"
        return super().execute(sql, *args)


class _Connection(sqlite3.Connection):
    def cursor(self, factory=_Cursor):
        return super().cursor(factory)

    def execute(self, sql, *args):
        return self.cursor().execute(sql, *args)


_connect = sqlite3.dbapi2.connect


def connect(*args, **kwargs):
    kwargs.setdefault("factory", _Connection)
    return _connect(*args, **kwargs)


# --------------------------------------------------------------------- "writers": oslo.db only

_modes = threading.local()


def _in_writer():
    """The innermost enginefacade block of this thread writes (True outside any block)."""
    stack = getattr(_modes, "stack", None)
    return stack[-1] if stack else True


def _track_modes(enginefacade):
    """Remember, per thread, whether each enginefacade block is a writer (nested blocks stack)."""
    context = enginefacade._TransactionContext
    for name in ("_session", "_connection"):
        inner = getattr(context, name).__wrapped__

        def tracked(self, *args, _inner=inner, **kwargs):
            stack = _modes.__dict__.setdefault("stack", [])
            stack.append(self.mode is enginefacade._WRITER)
            try:
                yield from _inner(self, *args, **kwargs)
            finally:
                stack.pop()
        setattr(context, name, contextlib.contextmanager(tracked))


def _begin_writers_immediate(engines):
    import sqlalchemy

    @engines._init_events.dispatch_for("sqlite")
    def _sandbox_sqlite_events(engine, **kw):
        @sqlalchemy.event.listens_for(engine, "connect")
        def _busy_timeout(dbapi_con, con_record):
            dbapi_con.execute("PRAGMA busy_timeout = 30000")

        for listener in list(engine.dispatch.begin):    # oslo.db's own BEGIN goes
            if getattr(listener, "__name__", "") == "_sqlite_emit_begin":
                sqlalchemy.event.remove(engine, "begin", listener)

        @sqlalchemy.event.listens_for(engine, "begin")
        def _begin(conn):
            if "in_transaction" not in conn.info:
                conn.exec_driver_sql("BEGIN IMMEDIATE" if _in_writer() else "BEGIN")
                conn.info["in_transaction"] = True


_PATCHES = {"oslo_db.sqlalchemy.engines": _begin_writers_immediate,
            "oslo_db.sqlalchemy.enginefacade": _track_modes}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def __init__(self):
        self._finding = set()

    def find_spec(self, name, path=None, target=None):
        if name not in _PATCHES or name in self._finding:
            return None
        self._finding.add(name)      # the other finders locate the real module
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._finding.discard(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def patched(module):
            exec_module(module)
            _PATCHES[name](module)
        spec.loader.exec_module = patched
        return spec


if os.environ.get("CEPH_MIGRATE_SQLITE_BEGIN") == "writers":
    if not set(_PATCHES) & set(sys.modules):
        sys.meta_path.insert(0, _PatchOnImport())
else:
    sqlite3.connect = sqlite3.dbapi2.connect = connect
