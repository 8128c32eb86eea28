#!/usr/bin/env python3
"""A MongoDB stand-in for the StackStorm sandbox - a TEST FIXTURE, never part of the pack.

No registry this project can install from serves MongoDB (Debian 12 has none; FerretDB needs
Go modules from the internet), and StackStorm needs one. This server speaks MongoDB's wire
protocol (OP_QUERY for the handshake, OP_MSG for everything else) and maps the commands that
pymongo 4 / mongoengine issue for StackStorm onto an in-memory mongomock client: find/getMore/
killCursors, insert/update/delete (duplicate-key errors), findAndModify, aggregate, count,
distinct, indexes (unique enforced), collections, ping/buildInfo.

Limits: one global lock, full scans, the whole store in RAM, pickled to --dump every
--dump-interval seconds and on SIGTERM (reloaded at start); TTL indexes are not enforced; no
auth, transactions, change streams or pipeline updates. What depends on real MongoDB
behaviour will not show here: give the sandbox a real one with CEPH_MIGRATE_ST2_MONGO_URL.
Adapted from the feasibility trial in ../shared/reference/st2-sandbox/.
"""

import argparse
import itertools
import logging
import os
import pickle
import signal
import socketserver
import struct
import threading
import time
import traceback

import bson
from bson.codec_options import CodecOptions
from bson.son import SON
import mongomock
from mongomock import filtering
from pymongo import ReturnDocument

OP_REPLY, OP_QUERY, OP_MSG, OP_COMPRESSED = 1, 2004, 2013, 2012
CODEC = CodecOptions(document_class=dict, tz_aware=False)
LOG = logging.getLogger("mongowire")

CLIENT = mongomock.MongoClient()
LOCK = threading.RLock()
CURSORS = {}
CURSOR_IDS = itertools.count(1000)
REQ_IDS = itertools.count(1)
CONN_IDS = itertools.count(1)
MAX_BATCH_BYTES = 8 * 1024 * 1024
STATS = {"cmds": 0}


class CmdError(Exception):
    def __init__(self, msg, code=8, name="UnknownError"):
        super().__init__(msg)
        self.code, self.name = code, name


def _hello(cmd_name, conn_id):
    now = bson.datetime.datetime.utcnow()
    doc = {
        "helloOk": True,
        "isWritablePrimary": True,
        "ismaster": True,
        "maxBsonObjectSize": 16 * 1024 * 1024,
        "maxMessageSizeBytes": 48000000,
        "maxWriteBatchSize": 100000,
        "localTime": now,
        "connectionId": conn_id,
        "minWireVersion": 0,
        "maxWireVersion": 17,
        "readOnly": False,
        "ok": 1.0,
    }
    return doc


def _make_cursor(ns, docs, first_batch_size, single_batch=False):
    if first_batch_size is None or first_batch_size <= 0:
        first_batch_size = 101
    batch, rest = _take(docs, first_batch_size)
    cid = 0
    if rest and not single_batch:
        cid = next(CURSOR_IDS)
        CURSORS[cid] = (ns, rest)
    return {"cursor": {"id": bson.int64.Int64(cid), "ns": ns, "firstBatch": batch}, "ok": 1.0}


def _take(docs, n):
    out, size = [], 0
    i = 0
    for i, d in enumerate(docs):
        if len(out) >= n or size > MAX_BATCH_BYTES:
            return out, docs[i:]
        size += len(bson.encode(d))
        out.append(d)
    return out, []


def _coll(db, name):
    return CLIENT[db][name]


def _exists(db, name):
    return name in CLIENT[db].list_collection_names()


def _dup_error(idx, e):
    return {"index": idx, "code": 11000, "errmsg": "E11000 duplicate key error: %s" % e}


def cmd_find(db, c):
    coll = _coll(db, c["find"])
    sort = list(c["sort"].items()) if c.get("sort") else None
    limit = int(c.get("limit", 0) or 0)
    single = bool(c.get("singleBatch")) or limit < 0
    limit = abs(limit)
    docs = list(
        coll.find(
            c.get("filter") or {},
            projection=c.get("projection") or None,
            skip=int(c.get("skip", 0) or 0),
            limit=limit,
            sort=sort,
        )
    )
    bs = c.get("batchSize")
    if single:
        bs = len(docs) or 1
    return _make_cursor("%s.%s" % (db, c["find"]), docs, bs, single)


def cmd_getMore(db, c):
    cid = int(c["getMore"])
    if cid not in CURSORS:
        raise CmdError("cursor id %d not found" % cid, 43, "CursorNotFound")
    ns, rest = CURSORS.pop(cid)
    bs = c.get("batchSize") or len(rest)
    batch, rest = _take(rest, bs)
    if rest:
        CURSORS[cid] = (ns, rest)
    else:
        cid = 0
    return {"cursor": {"id": bson.int64.Int64(cid), "ns": ns, "nextBatch": batch}, "ok": 1.0}


def cmd_killCursors(db, c):
    killed = []
    for cid in c.get("cursors", []):
        if CURSORS.pop(int(cid), None) is not None:
            killed.append(cid)
    return {
        "cursorsKilled": killed,
        "cursorsNotFound": [],
        "cursorsAlive": [],
        "cursorsUnknown": [],
        "ok": 1.0,
    }


def cmd_insert(db, c):
    coll = _coll(db, c["insert"])
    n, errors = 0, []
    for i, d in enumerate(c.get("documents", [])):
        try:
            coll.insert_one(d)
            n += 1
        except mongomock.DuplicateKeyError as e:
            errors.append(_dup_error(i, e))
            if c.get("ordered", True):
                break
    r = {"n": n, "ok": 1.0}
    if errors:
        r["writeErrors"] = errors
    return r


def _is_operator_doc(u):
    return isinstance(u, dict) and u and all(k.startswith("$") for k in u)


def cmd_update(db, c):
    coll = _coll(db, c["update"])
    n = nmod = 0
    upserted, errors = [], []
    for i, spec in enumerate(c.get("updates", [])):
        q, u = spec.get("q") or {}, spec.get("u")
        upsert, multi = bool(spec.get("upsert")), bool(spec.get("multi"))
        try:
            if _is_operator_doc(u):
                kw = {}
                if spec.get("arrayFilters"):
                    kw["array_filters"] = spec["arrayFilters"]
                fn = coll.update_many if multi else coll.update_one
                res = fn(q, u, upsert=upsert, **kw)
            elif isinstance(u, list):
                raise CmdError("pipeline updates not supported by mongowire", 2, "BadValue")
            else:
                res = coll.replace_one(q, u, upsert=upsert)
        except mongomock.DuplicateKeyError as e:
            errors.append(_dup_error(i, e))
            if c.get("ordered", True):
                break
            continue
        n += res.matched_count
        nmod += res.modified_count
        if res.upserted_id is not None:
            n += 1
            upserted.append({"index": i, "_id": res.upserted_id})
    r = {"n": n, "nModified": nmod, "ok": 1.0}
    if upserted:
        r["upserted"] = upserted
    if errors:
        r["writeErrors"] = errors
    return r


def cmd_delete(db, c):
    coll = _coll(db, c["delete"])
    n = 0
    for spec in c.get("deletes", []):
        q = spec.get("q") or {}
        if int(spec.get("limit", 0) or 0) == 1:
            n += coll.delete_one(q).deleted_count
        else:
            n += coll.delete_many(q).deleted_count
    return {"n": n, "ok": 1.0}


def cmd_findAndModify(db, c):
    name = c.get("findAndModify", c.get("findandmodify"))
    coll = _coll(db, name)
    q = c.get("query") or {}
    sort = list(c["sort"].items()) if c.get("sort") else None
    proj = c.get("fields") or None
    existing = coll.find_one(q, sort=sort)
    if c.get("remove"):
        val = coll.find_one_and_delete(q, projection=proj, sort=sort)
        return {"lastErrorObject": {"n": 1 if val is not None else 0}, "value": val, "ok": 1.0}
    u = c.get("update")
    upsert = bool(c.get("upsert"))
    rd = ReturnDocument.AFTER if c.get("new") else ReturnDocument.BEFORE
    try:
        if _is_operator_doc(u):
            kw = {}
            if c.get("arrayFilters"):
                kw["array_filters"] = c["arrayFilters"]
            val = coll.find_one_and_update(
                q, u, projection=proj, sort=sort, upsert=upsert, return_document=rd, **kw
            )
        else:
            val = coll.find_one_and_replace(
                q, u, projection=proj, sort=sort, upsert=upsert, return_document=rd
            )
    except mongomock.DuplicateKeyError as e:
        raise CmdError("E11000 duplicate key error: %s" % e, 11000, "DuplicateKey")
    leo = {
        "n": 1 if (existing is not None or upsert) else 0,
        "updatedExisting": existing is not None,
    }
    if existing is None and upsert:
        after = coll.find_one(q, sort=sort)
        if after is not None:
            leo["upserted"] = after.get("_id")
    return {"lastErrorObject": leo, "value": val, "ok": 1.0}


def cmd_aggregate(db, c):
    name = c["aggregate"]
    if not isinstance(name, str):
        raise CmdError("db-level aggregate not supported", 115, "CommandNotSupported")
    docs = list(_coll(db, name).aggregate(c.get("pipeline") or []))
    bs = (c.get("cursor") or {}).get("batchSize")
    return _make_cursor("%s.%s" % (db, name), docs, bs)


def cmd_count(db, c):
    coll = _coll(db, c["count"])
    kw = {}
    if c.get("skip"):
        kw["skip"] = int(c["skip"])
    if c.get("limit"):
        kw["limit"] = abs(int(c["limit"]))
    return {"n": coll.count_documents(c.get("query") or {}, **kw), "ok": 1.0}


def cmd_distinct(db, c):
    return {"values": _coll(db, c["distinct"]).distinct(c["key"], c.get("query") or {}), "ok": 1.0}


def cmd_createIndexes(db, c):
    name = c["createIndexes"]
    coll = _coll(db, name)
    created = not _exists(db, name)
    if created:
        CLIENT[db].create_collection(name)
    before = len(coll.index_information())
    for ix in c.get("indexes", []):
        existing = coll.index_information()
        if ix.get("name") in existing:
            continue
        kw = {k: v for k, v in ix.items() if k not in ("key", "v", "ns", "background")}
        try:
            coll.create_index(list(ix["key"].items()), **kw)
        except mongomock.DuplicateKeyError as e:
            raise CmdError(
                "E11000 duplicate key error building index: %s" % e, 11000, "DuplicateKey"
            )
        except (NotImplementedError, TypeError, ValueError) as e:
            LOG.warning("index %s on %s not enforced: %s", ix.get("name"), name, e)
    return {
        "createdCollectionAutomatically": created,
        "numIndexesBefore": before,
        "numIndexesAfter": len(coll.index_information()),
        "ok": 1.0,
    }


def cmd_listIndexes(db, c):
    name = c["listIndexes"]
    if not _exists(db, name):
        raise CmdError("ns does not exist: %s.%s" % (db, name), 26, "NamespaceNotFound")
    out = []
    for iname, info in _coll(db, name).index_information().items():
        d = {"v": 2, "key": SON(info["key"]), "name": iname}
        for k, v in info.items():
            if k not in ("key", "v"):
                d[k] = v
        out.append(d)
    return _make_cursor("%s.%s" % (db, name), out, 1000)


def cmd_dropIndexes(db, c):
    coll = _coll(db, c["dropIndexes"])
    idx = c.get("index")
    if idx == "*":
        coll.drop_indexes()
    else:
        if isinstance(idx, dict):
            idx = list(idx.items())
        try:
            coll.drop_index(idx)
        except Exception as e:  # noqa
            raise CmdError("index not found: %s" % e, 27, "IndexNotFound")
    return {"ok": 1.0}


def cmd_listCollections(db, c):
    docs = [
        {"name": n, "type": "collection", "options": {}, "info": {"readOnly": False}}
        for n in CLIENT[db].list_collection_names()
    ]
    flt = c.get("filter") or {}
    if flt:
        docs = [d for d in docs if filtering.filter_applies(flt, d)]
    return _make_cursor("%s.$cmd.listCollections" % db, docs, 1000)


def cmd_create(db, c):
    if not _exists(db, c["create"]):
        CLIENT[db].create_collection(c["create"])
    return {"ok": 1.0}


def cmd_drop(db, c):
    if not _exists(db, c["drop"]):
        raise CmdError("ns not found", 26, "NamespaceNotFound")
    CLIENT[db].drop_collection(c["drop"])
    return {"ns": "%s.%s" % (db, c["drop"]), "nIndexesWas": 1, "ok": 1.0}


def cmd_dropDatabase(db, c):
    CLIENT.drop_database(db)
    return {"dropped": db, "ok": 1.0}


def cmd_listDatabases(db, c):
    return {
        "databases": [
            {"name": n, "sizeOnDisk": 0, "empty": False} for n in CLIENT.list_database_names()
        ],
        "totalSize": 0,
        "ok": 1.0,
    }


def cmd_buildInfo(db, c):
    return {
        "version": "6.0.0",
        "versionArray": [6, 0, 0, 0],
        "gitVersion": "mongowire",
        "bits": 64,
        "maxBsonObjectSize": 16 * 1024 * 1024,
        "ok": 1.0,
    }


def _ok(db, c):
    return {"ok": 1.0}


def cmd_serverStatus(db, c):
    return {
        "host": "127.0.0.1",
        "version": "6.0.0",
        "process": "mongowire",
        "uptime": time.time() - START,
        "connections": {"current": 0},
        "ok": 1.0,
    }


def cmd_collStats(db, c):
    name = c.get("collStats")
    return {
        "ns": "%s.%s" % (db, name),
        "count": _coll(db, name).estimated_document_count(),
        "size": 0,
        "ok": 1.0,
    }


def cmd_dbStats(db, c):
    return {"db": db, "collections": len(CLIENT[db].list_collection_names()), "ok": 1.0}


HANDLERS = {
    "find": cmd_find,
    "getMore": cmd_getMore,
    "killCursors": cmd_killCursors,
    "insert": cmd_insert,
    "update": cmd_update,
    "delete": cmd_delete,
    "findAndModify": cmd_findAndModify,
    "findandmodify": cmd_findAndModify,
    "aggregate": cmd_aggregate,
    "count": cmd_count,
    "distinct": cmd_distinct,
    "createIndexes": cmd_createIndexes,
    "listIndexes": cmd_listIndexes,
    "dropIndexes": cmd_dropIndexes,
    "deleteIndexes": cmd_dropIndexes,
    "listCollections": cmd_listCollections,
    "create": cmd_create,
    "drop": cmd_drop,
    "dropDatabase": cmd_dropDatabase,
    "listDatabases": cmd_listDatabases,
    "buildInfo": cmd_buildInfo,
    "buildinfo": cmd_buildInfo,
    "ping": _ok,
    "endSessions": _ok,
    "getLastError": _ok,
    "getParameter": _ok,
    "serverStatus": cmd_serverStatus,
    "collStats": cmd_collStats,
    "dbStats": cmd_dbStats,
    "whatsmyuri": _ok,
    "getCmdLineOpts": lambda db, c: {"argv": ["mongowire"], "parsed": {}, "ok": 1.0},
    "hostInfo": lambda db, c: {"system": {"hostname": "localhost"}, "ok": 1.0},
    "connectionStatus": lambda db, c: {
        "authInfo": {"authenticatedUsers": [], "authenticatedUserRoles": []},
        "ok": 1.0,
    },
}


def run_command(db, cmd, conn_id):
    name = next(iter(cmd))
    STATS["cmds"] += 1
    if name in ("hello", "isMaster", "ismaster"):
        return _hello(name, conn_id)
    h = HANDLERS.get(name)
    if h is None:
        LOG.warning("unsupported command %s: %r", name, cmd)
        return {
            "ok": 0.0,
            "errmsg": "no such command: '%s'" % name,
            "code": 59,
            "codeName": "CommandNotFound",
        }
    try:
        with LOCK:
            return h(db, cmd)
    except CmdError as e:
        return {"ok": 0.0, "errmsg": str(e), "code": e.code, "codeName": e.name}
    except mongomock.OperationFailure as e:
        LOG.warning("command %s failed: %s", name, e)
        return {
            "ok": 0.0,
            "errmsg": str(e),
            "code": getattr(e, "code", None) or 2,
            "codeName": "BadValue",
        }
    except Exception as e:  # noqa
        LOG.error("command %s crashed: %s\n%s\ncmd=%r", name, e, traceback.format_exc(), cmd)
        return {
            "ok": 0.0,
            "errmsg": "mongowire internal error: %s" % e,
            "code": 1,
            "codeName": "InternalError",
        }


class Handler(socketserver.BaseRequestHandler):
    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def handle(self):
        conn_id = next(CONN_IDS)
        try:
            while True:
                hdr = self._recv(16)
                length, req_id, _resp_to, opcode = struct.unpack("<iiii", hdr)
                body = self._recv(length - 16)
                if opcode == OP_MSG:
                    self._op_msg(req_id, body, conn_id)
                elif opcode == OP_QUERY:
                    self._op_query(req_id, body, conn_id)
                else:
                    LOG.error("unsupported opcode %s", opcode)
                    return
        except (EOFError, ConnectionResetError, BrokenPipeError):
            return

    def _op_query(self, req_id, body, conn_id):
        # body[:4] holds the OP_QUERY flags: none matter here
        end = body.index(b"\x00", 4)
        ns = body[4:end].decode()
        pos = end + 1 + 8
        size = struct.unpack("<i", body[pos:pos + 4])[0]
        q = bson.decode(body[pos:pos + size], CODEC)
        if "$query" in q:
            q = q["$query"]
        db = ns.split(".", 1)[0]
        reply = run_command(db, q, conn_id)
        doc = bson.encode(reply)
        payload = struct.pack("<iqii", 0, 0, 0, 1) + doc
        self.request.sendall(
            struct.pack("<iiii", 16 + len(payload), next(REQ_IDS), req_id, OP_REPLY) + payload
        )

    def _op_msg(self, req_id, body, conn_id):
        flags = struct.unpack("<I", body[:4])[0]
        end = len(body) - (4 if flags & 1 else 0)
        pos = 4
        cmd = None
        seqs = {}
        while pos < end:
            kind = body[pos]
            pos += 1
            if kind == 0:
                size = struct.unpack("<i", body[pos:pos + 4])[0]
                cmd = bson.decode(body[pos:pos + size], CODEC)
                pos += size
            elif kind == 1:
                size = struct.unpack("<i", body[pos:pos + 4])[0]
                sec_end = pos + size
                p = pos + 4
                z = body.index(b"\x00", p)
                ident = body[p:z].decode()
                p = z + 1
                docs = []
                while p < sec_end:
                    dsize = struct.unpack("<i", body[p:p + 4])[0]
                    docs.append(bson.decode(body[p:p + dsize], CODEC))
                    p += dsize
                seqs.setdefault(ident, []).extend(docs)
                pos = sec_end
            else:
                raise EOFError("bad section kind %s" % kind)
        for k, v in seqs.items():
            cmd[k] = v
        db = cmd.pop("$db", "admin")
        for k in (
            "lsid",
            "$clusterTime",
            "txnNumber",
            "$readPreference",
            "readConcern",
            "writeConcern",
            "apiVersion",
            "apiStrict",
            "apiDeprecationErrors",
            "comment",
            "maxTimeMS",
        ):
            cmd.pop(k, None)
        reply = run_command(db, cmd, conn_id)
        if flags & 2:  # moreToCome: fire and forget
            return
        doc = bson.encode(reply)
        payload = struct.pack("<I", 0) + b"\x00" + doc
        self.request.sendall(
            struct.pack("<iiii", 16 + len(payload), next(REQ_IDS), req_id, OP_MSG) + payload
        )


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def dump(path):
    with LOCK:
        snap = {}
        for dbn in CLIENT.list_database_names():
            snap[dbn] = {}
            for cn in CLIENT[dbn].list_collection_names():
                coll = CLIENT[dbn][cn]
                snap[dbn][cn] = {"docs": list(coll.find({})), "indexes": coll.index_information()}
        data = pickle.dumps(snap, protocol=pickle.HIGHEST_PROTOCOL)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def load(path):
    with open(path, "rb") as f:
        snap = pickle.load(f)
    for dbn, colls in snap.items():
        for cn, c in colls.items():
            CLIENT[dbn].create_collection(cn)
            coll = CLIENT[dbn][cn]
            for iname, info in c["indexes"].items():
                if iname == "_id_":
                    continue
                kw = {k: v for k, v in info.items() if k not in ("key", "v", "ns", "background")}
                try:
                    coll.create_index(info["key"], name=iname, **kw)
                except Exception as e:  # noqa
                    LOG.warning("reload index %s.%s.%s: %s", dbn, cn, iname, e)
            if c["docs"]:
                coll.insert_many(c["docs"])


def main():
    global START
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=27017)
    ap.add_argument("--dump", help="pickle file for persistence")
    ap.add_argument("--dump-interval", type=int, default=30)
    ap.add_argument("--log-level", default="INFO")
    a = ap.parse_args()
    logging.basicConfig(level=a.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    START = time.time()
    if a.dump and os.path.exists(a.dump):
        load(a.dump)
        LOG.info("loaded store from %s", a.dump)
    srv = Server((a.host, a.port), Handler)

    def _term(*_):
        if a.dump:
            dump(a.dump)
        os._exit(0)

    signal.signal(signal.SIGTERM, _term)
    if a.dump:

        def _loop():
            while True:
                time.sleep(a.dump_interval)
                try:
                    dump(a.dump)
                except Exception as e:  # noqa
                    LOG.error("dump failed: %s", e)

        threading.Thread(target=_loop, daemon=True).start()
    LOG.info("mongowire listening on %s:%s", a.host, a.port)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        _term()


START = time.time()
if __name__ == "__main__":
    main()
