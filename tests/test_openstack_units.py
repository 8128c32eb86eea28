"""Decisions of the OpenStack steps that a real cloud cannot be made to show on demand
(odd states, odd quotas, API failures); the happy paths run against the real clouds."""
from types import SimpleNamespace

import pytest

from lib import cinder, glance, keystone
from lib.clouds import CloudSettings, OpenStackError, api
from lib.errors import ConfigError, NotFound, RefusedError
from lib.names import SOURCE_ID_KEY
from lib.settings import Settings

VOLUME = {"id": "0b0f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d10", "name": "db", "status": "available",
          "attached_to": [], "encrypted": False, "volume_type": "ceph", "size_gib": 10}


def volume(**changes):
    return dict(VOLUME, **changes)


@pytest.mark.parametrize("status", ["error", "error_managing", "deleting", "creating",
                                    "maintenance", "error_extending", "reserved"])
def test_volume_states_that_block(status):
    with pytest.raises(RefusedError):
        cinder.state_ok(volume(status=status), allow_in_use=True)


def test_in_use_needs_an_explicit_allowance():
    attached = volume(status="in-use", attached_to=["srv-1"])
    with pytest.raises(RefusedError, match="in use .*srv-1"):
        cinder.state_ok(attached, allow_in_use=False)
    assert cinder.state_ok(attached, allow_in_use=True) == "in-use"


def test_encrypted_is_refused():
    with pytest.raises(RefusedError, match="encrypted"):
        cinder.not_encrypted(volume(encrypted=True, volume_type="luks"))


class FakeBlockStorage:
    def __init__(self, quota=None, pools=()):
        self.quota, self.pools = quota, pools

    def get_quota_set(self, project, usage=False):
        return self.quota

    def backend_pools(self):
        return iter(self.pools)


def conn(**kw):
    return SimpleNamespace(block_storage=FakeBlockStorage(**kw))


@pytest.mark.parametrize("limit,used,fits", [(-1, 10 ** 6, True), (20, 10, True),
                                             (19, 10, False), (0, 0, False)])
def test_quota_room(limit, used, fits):
    quota = SimpleNamespace(gigabytes=limit, volumes=-1,
                            usage={"gigabytes": used, "volumes": 3})
    if fits:
        assert cinder.quota_room(conn(quota=quota), "p", volume()) == "enough quota"
    else:
        with pytest.raises(RefusedError, match="gigabytes"):
            cinder.quota_room(conn(quota=quota), "p", volume())


def settings(**extra):
    config = {"source_ceph": {"cluster": "ceph"}, "destination_ceph": {"cluster": "cephpa1"},
              "pools": {"destination_cinder_pool": "cinder-ceph-pa1-cl1"}}
    config.update(extra)
    return Settings.from_config(config)


def test_manage_host_is_discovered_or_configured():
    pools = [SimpleNamespace(name="h@other#other", capabilities={"pool_name": "other"}),
             SimpleNamespace(name="cinder-ct1-cl1@b#cinder-ceph-pa1-cl1", capabilities={})]
    assert cinder.manage_host(settings(), conn(pools=pools)) == \
        "cinder-ct1-cl1@b#cinder-ceph-pa1-cl1"
    with pytest.raises(NotFound, match="destination_manage_host"):
        cinder.manage_host(settings(), conn(pools=pools[:1]))
    fixed = settings(destination_manage_host="h@b#p")
    assert cinder.manage_host(fixed, conn(pools=[])) == "h@b#p"


def test_rbd_urls():
    assert glance.parse_rbd_url("rbd://f-s-i-d/glance-ct1-cl1/abc/snap") == {
        "fsid": "f-s-i-d", "pool": "glance-ct1-cl1", "image": "abc", "snapshot": "snap"}
    for other in (None, "", "file:///var/lib/glance/x", "rbd://fsid/pool/image"):
        assert glance.parse_rbd_url(other) is None


def test_api_errors_become_the_packs_own():
    import openstack.exceptions as osexc

    def missing():
        raise osexc.NotFoundException("No Volume found for x")

    def broken():
        raise osexc.HttpException("Policy doesn't allow volume:manage to be performed.")

    with pytest.raises(NotFound, match="source volume x: not found"):
        api("source volume x", missing)
    with pytest.raises(OpenStackError, match="Policy doesn't allow"):
        api("cinder manage", broken)


def test_clouds_need_configuration_and_hide_passwords():
    with pytest.raises(ConfigError, match="destination_cloud is not configured"):
        settings().cloud("destination")
    configured = settings(destination_cloud={"auth_url": "http://127.0.0.1:5010/v3",
                                             "username": "admin", "password": "s3cret-pw",
                                             "project_name": "admin"})
    cloud = configured.cloud("image_registration")     # falls back to the destination
    assert cloud.auth["username"] == "admin" and "s3cret-pw" not in repr(cloud)
    with pytest.raises(ConfigError, match="source_cloud needs"):
        CloudSettings.from_config({"region_name": "pa1"}, "source")


def test_connection_errors_hide_the_password():
    cloud = CloudSettings.from_config({"auth_url": "http://127.0.0.1:9/v3", "username": "u",
                                       "password": "s3cret-pw", "project_name": "p"},
                                      "destination")
    connection = cloud.connect()
    with pytest.raises(OpenStackError, match="listing volumes failed") as caught:
        api("listing volumes", lambda: list(connection.block_storage.volumes()))
    assert "s3cret-pw" not in str(caught.value)


def test_an_api_that_accepts_and_never_answers_fails_the_step_after_its_timeout():
    """A Keystone that takes the connection and never replies: describe_volume fails with
    the cloud named, after the configured per-request timeout, instead of hanging until
    StackStorm kills the action."""
    import socket
    import threading
    import time

    from ceph_env import run_action

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    held = []
    threading.Thread(target=lambda: [held.append(silent.accept()) for _ in range(8)],
                     daemon=True).start()
    config = {"source_ceph": {"cluster": "ceph", "conf": "/etc/ceph/ceph.conf"},
              "destination_ceph": {"cluster": "cephpa1", "conf": "/etc/ceph/cephpa1.conf"},
              "source_cloud": {"auth_url": "http://127.0.0.1:%d/v3" % silent.getsockname()[1],
                               "username": "admin", "password": "s3cret-never-shown",
                               "project_name": "admin", "timeout": 2}}
    started, outcome = time.monotonic(), []
    step = threading.Thread(target=lambda: outcome.append(run_action(
        "describe_volume", config, volume_id="0b0f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d10")),
        daemon=True)
    step.start()
    step.join(60)            # a hang fails this test instead of holding the whole run
    silent.close()
    took = time.monotonic() - started
    assert outcome, "describe_volume still waiting after %.0f s" % took
    ran = outcome[0]
    assert ran.ok is False and "timed out" in ran.result["error"], ran.result
    assert ran.result["error"].startswith("source volume "), ran.result
    assert "s3cret-never-shown" not in str(ran.result)
    assert took < 30, "gave up only after %.0f s" % took
    assert held, "the silent server never saw the connection"


def test_fields_cinder_manage_accepts_are_carried_as_they_are():
    fields = cinder.destination_fields(volume(description="plain text, ünïcode \\ ok",
                                              metadata={"app": "db"}))
    assert fields["description"] == "plain text, ünïcode \\ ok" and fields["notes"] == []
    assert fields["metadata"] == {"app": "db", SOURCE_ID_KEY: VOLUME["id"]}


def test_a_description_manage_would_refuse_is_carried_escaped_and_can_be_read_back():
    original = "line one\nline two\ttab \\ backslash \x1b"
    fields = cinder.destination_fields(volume(description=original, metadata={}))
    assert fields["description"] == "line one\\nline two\\ttab \\\\ backslash \\x1b"
    assert fields["description"].encode().decode("unicode_escape") == original
    assert "escapes" in fields["notes"][0]


@pytest.mark.parametrize("changes,words", [
    ({"metadata": {"bad\nkey": "x"}}, "metadata key"),
    ({"metadata": {"long": "x" * 256}}, "longer than 255"),
    ({"name": "n" * 256, "metadata": {}}, "name is 256 characters"),
    ({"description": "\n" * 200, "metadata": {}}, "at most once escaped"),
])
def test_fields_manage_would_refuse_are_refused_before_anything_changes(changes, words):
    with pytest.raises(RefusedError, match="would refuse to manage") as exc:
        cinder.destination_fields(volume(**dict({"description": ""}, **changes)))
    assert words in str(exc.value)


class FakeIdentity:
    """Keystone with the same project name in two domains."""

    def __init__(self):
        self.domains = {"d-default": "Default", "d-other": "other"}
        self.all = [SimpleNamespace(id="p-1", name="tenant", domain_id="d-default"),
                    SimpleNamespace(id="p-2", name="tenant", domain_id="d-other"),
                    SimpleNamespace(id="p-3", name="solo", domain_id="d-other")]

    def projects(self, name=None):
        return [p for p in self.all if p.name == name]

    def get_project(self, project_id):
        import openstack.exceptions as osexc
        for p in self.all:
            if p.id == project_id:
                return p
        raise osexc.NotFoundException("no project %s" % project_id)

    def get_domain(self, domain_id):
        return SimpleNamespace(name=self.domains[domain_id])


def test_the_default_project_lands_in_the_domain_of_the_source_projects_domain():
    conn = SimpleNamespace(identity=FakeIdentity())
    source = {"project_name": "tenant", "project_id": "src", "project_domain": "other"}
    assert keystone.project_for(conn, source)["id"] == "p-2"
    assert keystone.project_for(conn, dict(source, project_domain="Default"))["id"] == "p-1"
    with pytest.raises(NotFound, match="only in domain other, not in domain 'Default'"):
        keystone.project_for(conn, {"project_name": "solo", "project_id": "s",
                                    "project_domain": "Default"})


def test_a_project_name_in_several_domains_is_refused_an_id_is_not():
    conn = SimpleNamespace(identity=FakeIdentity())
    with pytest.raises(RefusedError, match="2 projects are named 'tenant'.*Default, other"):
        keystone.project_for(conn, VOLUME, "tenant")
    assert keystone.project_for(conn, VOLUME, "p-2") == {"id": "p-2", "name": "tenant",
                                                         "domain": "other"}
    with pytest.raises(NotFound, match="'nope' does not exist at the destination"):
        keystone.project_for(conn, VOLUME, "nope")


def test_an_api_answering_503_fails_the_step_with_the_services_words_and_no_secret():
    """A Keystone behind a proxy that answers 503 Service Unavailable to everything: the step
    fails at once, names the call and what the service said, never shows the password; the
    action changes nothing (it only reads)."""
    import http.server
    import threading

    from ceph_env import run_action

    class Unavailable(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            body = b'{"error": {"code": 503, "message": "maintenance"}}'
            self.send_response(503, "Service Unavailable")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = {"source_ceph": {"cluster": "ceph", "conf": "/etc/ceph/ceph.conf"},
                  "destination_ceph": {"cluster": "cephpa1", "conf": "/etc/ceph/cephpa1.conf"},
                  "source_cloud": {"auth_url": "http://127.0.0.1:%d/v3" % server.server_port,
                                   "username": "admin", "password": "s3cret-never-shown",
                                   "project_name": "admin", "timeout": 5}}
        ran = run_action("describe_volume", config,
                         volume_id="0b0f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d10")
    finally:
        server.shutdown()
        server.server_close()
    assert ran.ok is False, ran.result
    assert ran.result["error"].startswith("source volume "), ran.result
    assert "503" in ran.result["error"] or "Service Unavailable" in ran.result["error"], \
        ran.result
    assert "s3cret-never-shown" not in str(ran.result)
