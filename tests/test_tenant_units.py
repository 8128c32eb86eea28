"""The tenant core (actions/lib/tenant.py): the export document, the mapping and the rule every
importer follows, against a destination held in memory. The same rule runs against the real
Neutron in tests/test_tenant_networks.py."""
import itertools
from types import SimpleNamespace

import pytest

from lib.errors import ConfigError, RefusedError
from lib.tenant import (document, dump, Entry, fingerprint, import_all, load, reconcile,
                        resolve_refs, Resource, resources, source_tag, Store, summary,
                        TenantMap)

_ids = itertools.count(1)


class Cloud:
    """A destination of one kind: objects with an id, params, tags and a status; every write
    counted."""

    def __init__(self, fixed=("cidr",)):
        self.objects = {}
        self.writes = []
        self.fixed = fixed

    def add(self, params, tags=(), status="ACTIVE"):
        obj = SimpleNamespace(id="dest-%d" % next(_ids), params=dict(params), tags=set(tags),
                              status=status)
        self.objects[obj.id] = obj
        return obj

    def store(self):
        def create(wanted, tag):
            self.writes.append(("create", wanted.get("name")))
            return self.add(wanted, [tag])

        def update(obj, attrs):
            self.writes.append(("update", obj.id, sorted(attrs)))
            obj.params.update(attrs)
            return obj

        def delete(obj):
            self.writes.append(("delete", obj.id))
            del self.objects[obj.id]

        def tag(obj, t):
            self.writes.append(("tag", obj.id))
            obj.tags.add(t)
        return Store(
            get=lambda i: self.objects.get(i),
            tagged=lambda t: [o for o in self.objects.values() if t in o.tags],
            named=lambda n: [o for o in self.objects.values() if o.params.get("name") == n],
            actual=lambda o: dict(o.params),
            create=create, update=update,
            updatable=tuple(k for k in ("name", "description", "cidr", "mtu")
                            if k not in self.fixed),
            failed=lambda o: o.status == "ERROR", delete=delete, tag=tag)


def run(cloud, tmap, source_id, **params):
    return reconcile("network", source_id, dict(params), cloud.store(), tmap)


def test_created_once_and_a_rerun_writes_nothing():
    cloud, tmap = Cloud(), TenantMap()
    first = run(cloud, tmap, "src-1", name="net", mtu=1450)
    assert (first.outcome, first.changed) == ("created", True)
    assert tmap.get("network", "src-1").destination_id == first.destination_id
    writes = list(cloud.writes)
    again = run(cloud, tmap, "src-1", name="net", mtu=1450)
    assert (again.outcome, again.changed, again.destination_id) == (
        "unchanged", False, first.destination_id)
    assert cloud.writes == writes


def test_two_resources_of_one_name_are_two_resources():
    cloud, tmap = Cloud(), TenantMap()
    a = run(cloud, tmap, "src-a", name="same", mtu=1500)
    b = run(cloud, tmap, "src-b", name="same", mtu=1500)
    assert a.outcome == b.outcome == "created" and a.destination_id != b.destination_id
    assert run(cloud, tmap, "src-a", name="same", mtu=1500).destination_id == a.destination_id
    assert run(cloud, tmap, "src-b", name="same", mtu=1500).destination_id == b.destination_id
    assert len(cloud.objects) == 2


def test_renamed_at_the_destination_is_found_again_and_kept():
    cloud, tmap = Cloud(), TenantMap()
    made = run(cloud, tmap, "src-1", name="net", mtu=1450)
    cloud.objects[made.destination_id].params["name"] = "renamed-by-someone"
    writes = list(cloud.writes)
    again = run(cloud, tmap, "src-1", name="net", mtu=1450)
    assert (again.outcome, again.destination_id, again.changed) == (
        "unchanged", made.destination_id, False)
    assert "kept: name" in again.detail
    assert cloud.writes == writes and len(cloud.objects) == 1


def test_a_lost_mapping_is_rebuilt_from_the_source_tag():
    cloud, tmap = Cloud(), TenantMap()
    made = run(cloud, tmap, "src-1", name="net", mtu=1450)
    fresh = TenantMap()
    again = run(cloud, fresh, "src-1", name="net", mtu=1450)
    assert (again.outcome, again.destination_id) == ("unchanged", made.destination_id)
    assert "found by tag" in again.detail
    assert fresh.get("network", "src-1").destination_id == made.destination_id


def test_a_source_change_is_applied_and_a_fixed_one_is_a_conflict():
    cloud, tmap = Cloud(), TenantMap()
    made = run(cloud, tmap, "src-1", name="net", mtu=1450, cidr="10.0.0.0/24")
    changed = run(cloud, tmap, "src-1", name="net", mtu=1400, cidr="10.0.0.0/24")
    assert (changed.outcome, changed.changed) == ("updated", True)
    assert cloud.objects[made.destination_id].params["mtu"] == 1400
    fixed = run(cloud, tmap, "src-1", name="net", mtu=1400, cidr="10.9.0.0/24")
    assert (fixed.outcome, fixed.changed) == ("conflict", False)
    assert "cidr" in fixed.detail
    assert cloud.objects[made.destination_id].params["cidr"] == "10.0.0.0/24"


def test_an_error_leftover_of_the_packs_is_replaced_and_a_strangers_is_not_touched():
    cloud, tmap = Cloud(), TenantMap()
    stranger = cloud.add({"name": "net", "mtu": 1450}, status="ERROR")
    made = run(cloud, tmap, "src-1", name="net", mtu=1450)
    assert made.outcome == "created" and stranger.id in cloud.objects
    cloud.objects[made.destination_id].status = "ERROR"
    again = run(cloud, tmap, "src-1", name="net", mtu=1450)
    assert again.outcome == "created" and "ERROR leftover" in again.detail
    assert made.destination_id not in cloud.objects and stranger.id in cloud.objects
    assert tmap.get("network", "src-1").destination_id == again.destination_id


def test_adoption_by_name_only_when_asked_and_only_if_equal():
    cloud = Cloud()
    existing = cloud.add({"name": "net", "mtu": 1450})
    other = cloud.add({"name": "other", "mtu": 1500})
    tmap = TenantMap()
    adopted = reconcile("network", "src-1", {"name": "net", "mtu": 1450}, cloud.store(), tmap,
                        adopt=True)
    assert (adopted.outcome, adopted.destination_id) == ("adopted", existing.id)
    assert source_tag("src-1") in existing.tags
    unequal = reconcile("network", "src-2", {"name": "other", "mtu": 9000}, cloud.store(), tmap,
                        adopt=True)
    assert unequal.outcome == "created" and unequal.destination_id != other.id
    not_asked = reconcile("network", "src-3", {"name": "other", "mtu": 1500}, cloud.store(),
                          tmap)
    assert not_asked.outcome == "created" and not_asked.destination_id != other.id


def test_two_tagged_copies_are_a_conflict_nothing_written():
    cloud, tmap = Cloud(), TenantMap()
    cloud.add({"name": "net"}, tags=[source_tag("src-1")])
    cloud.add({"name": "net"}, tags=[source_tag("src-1")])
    result = run(cloud, tmap, "src-1", name="net")
    assert result.outcome == "conflict" and cloud.writes == []


def test_a_dry_run_writes_nothing_and_records_nothing():
    cloud, tmap = Cloud(), TenantMap()
    result = reconcile("network", "src-1", {"name": "net"}, cloud.store(), tmap, dry_run=True)
    assert (result.outcome, result.destination_id) == ("created", None)
    assert cloud.writes == [] and tmap.get("network", "src-1") is None


def test_the_export_is_stable_bytes_and_reads_back():
    a = Resource("network", "n1", {"name": "net", "tags": ["b", "a"], "mtu": 1450},
                 {"status": "ACTIVE"})
    b = Resource("subnet", "s1", {"network_id": "n1", "cidr": "10.0.0.0/24", "name": "sub"},
                 refs={"network_id": "network"})
    text = dump(document({"id": "p1", "name": "tenant"}, [a, b]))
    assert dump(document({"name": "tenant", "id": "p1"}, [b, a])) == text
    doc = load(text)
    assert resources(doc, "subnet") == [b] and resources(doc, "network") == [a]
    with pytest.raises(ConfigError):
        load("version: 99\n")


def test_refs_resolve_through_the_mapping_and_a_missing_one_is_refused():
    tmap = TenantMap()
    tmap.record("subnet", "s1", Entry("dest-s1", "created", "x"))
    interfaces = [{"subnet_id": "s1", "ip_address": "10.0.0.1"},
                  {"subnet_id": "s2", "ip_address": "10.1.0.1"}]
    router = Resource("router", "r1", {"interfaces": interfaces}, refs={"interfaces": "subnet"})
    with pytest.raises(RefusedError, match="subnet s2 is not at the destination"):
        resolve_refs(router, tmap)
    planned = resolve_refs(router, tmap, dry_run=True)
    assert [i["subnet_id"] for i in planned["interfaces"]] == ["dest-s1", "(new subnet from s2)"]


def test_import_all_goes_in_dependency_order_and_reports_what_it_cannot_bring():
    net = Resource("network", "n1", {"name": "net"})
    sub = Resource("subnet", "s1", {"name": "sub", "network_id": "n1"},
                   refs={"network_id": "network"})
    orphan = Resource("subnet", "s2", {"name": "orphan", "network_id": "n9"},
                      refs={"network_id": "network"})
    doc = document({"id": "p1"}, [orphan, sub, net])
    clouds = {"network": Cloud(), "subnet": Cloud()}
    tmap = TenantMap()
    results = import_all(doc, tmap, lambda kind, wanted: clouds[kind].store(),
                         lambda resource, wanted, m: wanted, kinds=("network", "subnet"))
    assert [(r.kind, r.outcome) for r in results] == [
        ("network", "created"), ("subnet", "conflict"), ("subnet", "created")]
    made_subnet = clouds["subnet"].objects[results[2].destination_id]
    assert made_subnet.params["network_id"] == results[0].destination_id
    assert summary(results)["created"] == 2
    again = import_all(doc, tmap, lambda kind, wanted: clouds[kind].store(),
                       lambda resource, wanted, m: wanted, kinds=("network", "subnet"))
    assert [r.outcome for r in again] == ["unchanged", "conflict", "unchanged"]


def test_the_mapping_round_trips_and_refuses_an_unknown_translation():
    tmap = TenantMap(translation={"external_networks": {"ext-src": "ext-dst"}})
    tmap.record("network", "n1", Entry("d1", "created", fingerprint({"name": "a"})))
    again = TenantMap.from_dict(tmap.as_dict())
    assert again.as_dict() == tmap.as_dict()
    assert again.translate("external_networks", "ext-src") == "ext-dst"
    assert again.translate("physnets", "physnet1") == "physnet1"
    with pytest.raises(ConfigError, match="unknown translation"):
        TenantMap.from_dict({"translation": {"networks": {}}})
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})


def test_what_the_pack_made_stays_made_through_reruns_and_an_adopted_one_never_is():
    cloud, tmap = Cloud(), TenantMap()
    run(cloud, tmap, "src-1", name="net", mtu=1450)
    run(cloud, tmap, "src-1", name="net", mtu=1450)
    assert tmap.get("network", "src-1").outcome == "unchanged"
    assert tmap.get("network", "src-1").made is True
    cloud.add({"name": "theirs", "mtu": 1500})
    reconcile("network", "src-2", {"name": "theirs", "mtu": 1500}, cloud.store(), tmap,
              adopt=True)
    assert tmap.get("network", "src-2").made is False
    assert TenantMap.from_dict(tmap.as_dict()).get("network", "src-1").made is True


def people(cloud):
    """Users: one of the same name is the same account (builtin), kept as it is."""
    import dataclasses

    def same_name(wanted):
        found = [o for o in cloud.objects.values() if o.params.get("name") == wanted["name"]]
        return found[0] if found else None
    return dataclasses.replace(cloud.store(), builtin=same_name, keep_builtin=True, tag=None)


def test_an_account_of_the_same_name_is_adopted_as_it_is_and_never_changed():
    cloud, tmap = Cloud(), TenantMap()
    theirs = cloud.add({"name": "alice", "email": "old@example.org", "enabled": True})
    first = reconcile("user", "u-1", {"name": "alice", "email": "new@example.org",
                                      "enabled": False}, people(cloud), tmap)
    assert (first.outcome, first.changed, first.destination_id) == ("adopted", False, theirs.id)
    assert "kept as it is" in first.detail and cloud.writes == []
    assert tmap.get("user", "u-1").made is False
    again = reconcile("user", "u-1", {"name": "alice", "email": "newer@example.org",
                                      "enabled": False}, people(cloud), tmap)
    assert (again.outcome, again.changed) == ("unchanged", False) and cloud.writes == []
    assert theirs.params["email"] == "old@example.org"
    # one the pack made is its own: a change at the source is applied to it
    made = reconcile("user", "u-2", {"name": "bob", "description": "a"}, people(cloud), tmap)
    assert made.outcome == "created" and tmap.get("user", "u-2").made is True
    changed = reconcile("user", "u-2", {"name": "bob", "description": "b"}, people(cloud), tmap)
    assert (changed.outcome, changed.detail) == ("updated", "set description")


def test_a_dry_run_does_not_look_for_what_refers_to_something_not_made_yet():
    cloud, tmap = Cloud(), TenantMap()
    looked = []

    def builtin(wanted):
        looked.append(wanted)
        return None
    import dataclasses
    store = dataclasses.replace(cloud.store(), builtin=builtin)
    resource = Resource("keypair", "k-1", {"name": "laptop", "user_id": "u-1"},
                        refs={"user_id": "user"})
    wanted = resolve_refs(resource, tmap, dry_run=True)
    assert wanted["user_id"] == "(new user from u-1)"
    result = reconcile("keypair", "k-1", wanted, store, tmap, dry_run=True)
    assert result.outcome == "created" and looked == [] and cloud.writes == []
    reconcile("keypair", "k-1", dict(wanted, user_id="dest-u"), store, tmap, dry_run=True)
    assert looked == [{"name": "laptop", "user_id": "dest-u"}]


def test_quota_shortfalls_name_each_limit_below_the_tenants_use():
    from lib.quotas import shortfalls

    used = {"compute": {"cores": 8, "instances": 2}, "network": {"networks": 3}}
    allowed = {"compute": {"cores": 4, "instances": -1}, "network": {"networks": 3}}
    assert shortfalls(used, allowed) == [
        {"service": "compute", "limit": "cores", "used": 8, "allowed": 4}]
    assert shortfalls(used, {}) == []


def os_migrate_file(*resources):
    import yaml

    return yaml.safe_dump({"os_migrate_version": "1.0.0", "resources": list(resources)})


def osm(kind, ident, project="p1", **params):
    return {"type": kind, "params": params, "_info": {"id": ident, "project_id": project}}


def test_os_migrate_files_become_an_export_keyed_by_source_id():
    from lib.os_migrate import read

    files = [os_migrate_file(osm("openstack.network.Network", "n1", name="app", mtu=1400),
                             osm("openstack.network.Network", "n2", name="app"),
                             osm("openstack.network.Network", "n3", project="p2", name="x")),
             os_migrate_file(osm("openstack.image.Image", "i1", name="base"))]
    with pytest.raises(ConfigError, match="the files hold 2 projects"):
        read(files, project="tenant")          # whose? two owners and no project file
    project = osm("openstack.identity.Project", "p1", name="tenant", is_enabled=True,
                  domain_ref={"name": "Default"})
    done = read(files + [os_migrate_file(project)], project="tenant")
    doc = done["document"]
    assert doc["project"] == {"id": "p1", "name": "tenant", "domain": "Default"}
    networks = doc["resources"]["network"]
    assert sorted(networks) == ["n1", "n2"]            # p2's is not this tenant's
    assert networks["n1"]["params"]["mtu"] == 1400
    assert doc["resources"]["project"]["p1"]["params"]["name"] == "tenant"
    assert done["skipped"] == ["1 openstack.image.Image"]


def test_os_migrates_references_by_a_name_two_resources_share_are_refused():
    from lib.os_migrate import read

    subnet = osm("openstack.subnet.Subnet", "s1", name="v4", cidr="10.0.0.0/24",
                 network_ref={"name": "app"})
    two = os_migrate_file(osm("openstack.network.Network", "n1", name="app"),
                          osm("openstack.network.Network", "n2", name="app"), subnet,
                          osm("openstack.identity.Project", "p1", name="tenant"))
    with pytest.raises(ConfigError, match="2 of that name: the pack cannot tell which"):
        read([two])
    with pytest.raises(ConfigError, match="does not read: openstack.dns.Zone"):
        read([os_migrate_file(osm("openstack.dns.Zone", "z1"),
                              osm("openstack.identity.Project", "p1", name="tenant"))])
    with pytest.raises(ConfigError, match="not an OS Migrate resources file"):
        read(["just: text"])


def test_a_carry_that_fails_says_what_it_left_and_how_to_finish(monkeypatch):
    """(A failed check cannot be had from a real cluster on demand: the steps are stubbed.)"""
    from lib import image_transfer
    from lib.errors import VerificationFailed

    class Image:
        def __init__(self, cli, pool, name):
            self.spec = "%s/%s" % (pool, name)
            self.cli = SimpleNamespace(cluster=SimpleNamespace(name="c"))

        def recorded(self, key):
            return None        # never verified: not carried before

    settings = SimpleNamespace(
        pools=SimpleNamespace(mirrored_glance="osglance", destination_glance="glance-ct1"),
        image=lambda side, pool, name: Image(None, pool, name), wait_timeout=5,
        poll_interval=1, copy_features=(), copy_timeout=60, rbd=lambda side: None)
    done = []
    for step in ("enable_mirroring", "copy_replica", "create_snapshot"):
        monkeypatch.setattr(image_transfer, step, lambda *a, _s=step, **k: done.append(_s))
    monkeypatch.setattr(image_transfer, "wait_for_sync", lambda *a, **k: {"timed_out": False})

    def differs(*args, **kwargs):
        raise VerificationFailed("content differs")
    monkeypatch.setattr(image_transfer, "verify_copy", differs)
    with pytest.raises(VerificationFailed) as failed:
        image_transfer.carry_image(settings, {"pool": "osglance", "image": "img-1"})
    assert str(failed.value) == (
        "content differs. Left: mirroring of osglance/img-1 is on (journaling added); its copy "
        "glance-ct1/img-1 is in the destination Glance pool, not registered; re-run the import "
        "to finish")
    assert done == ["enable_mirroring", "copy_replica", "create_snapshot"]
    with pytest.raises(RefusedError, match="not in the mirrored Glance pool osglance"):
        image_transfer.carry_image(settings, {"pool": "images", "image": "img-1"})


def test_a_dry_run_over_a_lost_mapping_resolves_refs_to_what_the_tags_find():
    """A run killed inside its import leaves tagged resources and no mapping: the plan of the
    re-run finds them by tag and what refers to them resolves to them (not a conflict)."""
    net = Resource("network", "n1", {"name": "net"})
    sub = Resource("subnet", "s1", {"name": "sub", "network_id": "n1"},
                   refs={"network_id": "network"})
    doc = document({"id": "p1"}, [sub, net])
    clouds = {"network": Cloud(), "subnet": Cloud(fixed=("network_id",))}

    def run_all(tmap, dry_run):
        return import_all(doc, tmap, lambda kind, wanted: clouds[kind].store(),
                          lambda resource, wanted, m: wanted, kinds=("network", "subnet"),
                          dry_run=dry_run)
    run_all(TenantMap(), False)                      # the mapping it wrote is lost
    writes = list(clouds["subnet"].writes)
    planned = run_all(TenantMap(), True)
    assert [(r.kind, r.outcome) for r in planned] == [("network", "unchanged"),
                                                      ("subnet", "unchanged")], planned
    assert clouds["subnet"].writes == writes


def test_two_runs_saving_one_mapping_side_by_side_keep_each_others_entries():
    """Two servers of a tenant migrate at once: each run read the mapping before the other
    saved; each saves only what it recorded or forgot over the mapping as it is then."""
    from lib.tenant_infra import load_map, save_map

    store = {}
    read, write = store.get, store.__setitem__
    first = TenantMap()
    first.record("network", "n1", Entry("dest-n1", "created", "x", made=True))
    save_map(write, "p1", first, read)
    a, b = load_map(read, "p1"), load_map(read, "p1")
    a.record("port", "pa", Entry("dest-pa", "created", "x", made=True))
    b.record("port", "pb", Entry("dest-pb", "created", "x", made=True))
    b.forget("network", "n1")
    save_map(write, "p1", a, read)
    save_map(write, "p1", b, read)
    saved = load_map(read, "p1")
    assert sorted(saved.entries["port"]) == ["pa", "pb"]
    assert saved.get("network", "n1") is None and saved.get("port", "pa").made
    save_map(write, "p1", TenantMap(entries={"port": {}}), None)     # no reader: as it is
    assert load_map(read, "p1").entries.get("port") == {}
