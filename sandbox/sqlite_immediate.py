"""Installed into the sandbox's OpenStack virtualenv (imported by a .pth file at interpreter
start): every SQLite transaction opened with a plain BEGIN becomes BEGIN IMMEDIATE.

The services of a cloud share one SQLite file. With deferred transactions, a transaction that
read first and then writes while another process committed fails at once with "database is
locked" (the busy timeout does not apply to that upgrade): cinder-api answered a volume create
with 500 that way, and cinder-volume died at start. BEGIN IMMEDIATE takes the write lock first,
so writers wait their turn (up to the connection's timeout) instead of failing. Only stdlib
sqlite3 is touched, and only in this virtualenv; nothing is imported that eventlet must patch.
"""
import sqlite3
import sqlite3.dbapi2


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


sqlite3.connect = sqlite3.dbapi2.connect = connect
