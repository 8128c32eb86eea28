"""A tenant's infrastructure from pa1 to ct1 through export_tenant, import_tenant, compare_tenant
and rollback_tenant, against the real Nova and Neutron of both sandbox clouds: a private flavor
with extra specs, a server group, two networks of one name, IPv4 and IPv6 subnets, a router with
its gateway, interfaces at given addresses and a static route, security groups whose rules refer
to each other (a cycle), and the default group."""
import hashlib
import json
import os
import uuid

import openstack

import pytest

from runner.actions import LocalActionService, run_python_action


def act(name, config, **params):
    """One action through the local runner, whose datastore (the mapping) lasts the process."""
    succeeded, result = run_python_action(name, config, params)
    assert succeeded, result
    return result


def neutron_state(conn, project_id):
    """Every network resource of the project with its revision: a write shows."""
    net = conn.network
    state = {}
    for kind, listing in (("network", net.networks), ("subnet", net.subnets),
                          ("router", net.routers), ("security_group", net.security_groups),
                          ("port", net.ports)):
        for obj in listing(project_id=project_id):
            state["%s:%s" % (kind, obj.id)] = (obj.name, getattr(obj, "revision_number", None))
    for group in net.security_groups(project_id=project_id):
        for rule in net.security_group_rules(security_group_id=group.id):
            state["rule:%s" % rule.id] = rule.security_group_id
    return state


QUOTAS = {"compute": {"cores": 17}, "network": {"routers": 7}, "volume": {"gigabytes": 123}}


def set_quotas(conn, project_id, wanted):
    """Set these quotas of the project; returns what they were (to set them back)."""
    readers = {"compute": conn.compute.get_quota_set, "network": conn.network.get_quota,
               "volume": conn.block_storage.get_quota_set}
    writers = {"compute": conn.compute.update_quota_set, "network": conn.network.update_quota,
               "volume": conn.block_storage.update_quota_set}
    before = {}
    for service, limits in wanted.items():
        current = readers[service](project_id)
        before[service] = {k: getattr(current, k) for k in limits}
        writers[service](project_id, **limits)
    return before


def quota_values(conn, project_id):
    return {"compute": {"cores": conn.compute.get_quota_set(project_id).cores},
            "network": {"routers": conn.network.get_quota(project_id).routers},
            "volume": {"gigabytes": conn.block_storage.get_quota_set(project_id).gigabytes}}


@pytest.fixture
def source_tenant(clouds, openstack_facts):
    """The source tenant's infrastructure, built as its users and the operator build it;
    removed afterwards."""
    conn = clouds["pa1-tenant"]
    net = conn.network
    tag = uuid.uuid4().hex[:6]
    made = []
    admin = clouds["pa1-admin"].compute
    quotas = set_quotas(clouds["pa1-admin"], openstack_facts["clouds"]["pa1"]
                        ["tenant_project_id"], QUOTAS)
    flavor = admin.create_flavor(name="private-%s" % tag, vcpus=2, ram=256, disk=1,
                                 is_public=False, description="the tenant's own")
    group = conn.compute.create_server_group(name="spread", policy="anti-affinity")
    try:
        admin.create_flavor_extra_specs(flavor, {"hw:cpu_policy": "shared"})
        admin.flavor_add_tenant_access(flavor, openstack_facts["clouds"]["pa1"]
                                       ["tenant_project_id"])
        a = net.create_network(name="app", mtu=1400)
        b = net.create_network(name="app")        # the same name: another network
        made += [("network", a.id), ("network", b.id)]
        v4 = net.create_subnet(network_id=a.id, name="v4", ip_version=4, cidr="10.31.0.0/24",
                               gateway_ip="10.31.0.1",
                               allocation_pools=[{"start": "10.31.0.10", "end": "10.31.0.99"}],
                               host_routes=[{"destination": "10.99.0.0/16",
                                             "nexthop": "10.31.0.5"}],
                               dns_nameservers=["192.0.2.53"])
        v6 = net.create_subnet(network_id=a.id, name="v6", ip_version=6, cidr="fd00:31::/64",
                               ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
        isolated = net.create_subnet(network_id=b.id, name="isolated", ip_version=4,
                                     cidr="10.32.0.0/24", gateway_ip=None, is_dhcp_enabled=False)
        made += [("subnet", s.id) for s in (v4, v6, isolated)]
        public = openstack_facts["clouds"]["pa1"]["network"]["public"]["id"]
        router = net.create_router(name="edge", external_gateway_info={"network_id": public})
        made.append(("router", router.id))
        net.add_interface_to_router(router, v4.id)
        port = net.create_port(network_id=b.id, fixed_ips=[{"subnet_id": isolated.id,
                                                            "ip_address": "10.32.0.7"}])
        net.add_interface_to_router(router, None, port.id)
        net.update_router(router, routes=[{"destination": "10.77.0.0/16",
                                           "nexthop": "10.32.0.9"}])
        web = net.create_security_group(name="web-%s" % tag, description="front")
        db = net.create_security_group(name="db-%s" % tag)
        made += [("security_group", web.id), ("security_group", db.id)]
        net.create_security_group_rule(security_group_id=web.id, direction="ingress",
                                       protocol="tcp", port_range_min=443, port_range_max=443,
                                       remote_ip_prefix="0.0.0.0/0")
        net.create_security_group_rule(security_group_id=web.id, direction="ingress",
                                       protocol="tcp", port_range_min=8080, port_range_max=8080,
                                       remote_group_id=db.id)
        net.create_security_group_rule(security_group_id=db.id, direction="ingress",
                                       protocol="tcp", port_range_min=5432, port_range_max=5432,
                                       remote_group_id=web.id)
        default = next(iter(net.security_groups(project_id=a.project_id, name="default")))
        extra = net.create_security_group_rule(security_group_id=default.id,
                                               direction="ingress", protocol="icmp",
                                               remote_ip_prefix="10.0.0.0/8")
        yield {"project_id": a.project_id, "networks": (a, b), "router": router,
               "public": public, "groups": (web, db), "default_rule": extra,
               "flavor": flavor, "server_group": group}
    finally:
        set_quotas(clouds["pa1-admin"], openstack_facts["clouds"]["pa1"]["tenant_project_id"],
                   quotas)
        admin.delete_flavor(flavor.id, ignore_missing=True)
        conn.compute.delete_server_group(group.id, ignore_missing=True)
        router_ids = [i for k, i in made if k == "router"]
        for rid in router_ids:
            try:
                r = net.get_router(rid)
                net.update_router(r, routes=[])
                for p in net.ports(device_id=rid):
                    net.remove_interface_from_router(r, None, p.id)
                net.delete_router(rid)
            except Exception:
                pass
        for kind, ident in reversed(made):
            try:
                getattr(net, "delete_" + kind)(ident, ignore_missing=True)
            except Exception:
                pass
        try:
            net.delete_security_group_rule(extra.id, ignore_missing=True)
        except Exception:
            pass


def test_a_tenants_networks_cross_once_rerun_write_nothing_and_roll_back(
        full_config, clouds, openstack_facts, source_tenant):
    LocalActionService.DATASTORE.clear()
    dest_project = openstack_facts["clouds"]["ct1"]["tenant_project_id"]
    ct1_quotas = quota_values(clouds["ct1-admin"], dest_project)
    try:
        crossing(full_config, clouds, openstack_facts, source_tenant)
    finally:
        # whatever a failed run left at ct1 (the pack's own rollback: it is tested too); a
        # rollback keeps quotas as set
        set_quotas(clouds["ct1-admin"], dest_project, ct1_quotas)
        run_python_action("rollback_tenant", full_config,
                          {"source_project_id": source_tenant["project_id"]})


def crossing(full_config, clouds, openstack_facts, source_tenant):
    ct1 = clouds["ct1-admin"]
    dest_project = openstack_facts["clouds"]["ct1"]["tenant_project_id"]
    dest_public = openstack_facts["clouds"]["ct1"]["network"]["public"]["id"]

    first = act("export_tenant", full_config, project="tenant")
    assert act("export_tenant", full_config, project="tenant")["yaml"] == first["yaml"]
    doc = first["document"]
    assert first["external_networks"] == {source_tenant["public"]: "public"}
    nets = doc["resources"]["network"]
    assert sorted(n["params"]["name"] for n in nets.values()) == ["app", "app"]

    list(clouds["ct1-tenant"].network.security_groups())   # its default group, made by Neutron
    before = neutron_state(ct1, dest_project)
    # without the external network's counterpart the router cannot come: said, not guessed
    refused = act("import_tenant", full_config, export=doc,
                  destination_project=dest_project, dry_run=True)
    assert [r["outcome"] for r in refused["results"] if r["kind"] == "router"] == ["conflict"]
    translation = {"external_networks": {source_tenant["public"]: dest_public}}
    dry = act("import_tenant", full_config, export=doc, translation=translation,
              destination_project=dest_project, dry_run=True)
    assert dry["changed"] is False and dry["summary"]["conflict"] == 0, dry["text"]
    # (quotas are the destination project's own: updated to the source's limits)
    # (the default group's own rules: equal at ct1, found there as the import will find them)
    assert {r["outcome"] for r in dry["results"]} == {"created", "adopted", "updated",
                                                      "unchanged"}, dry["text"]
    assert neutron_state(ct1, dest_project) == before

    done = act("import_tenant", full_config, export=doc, translation=translation,
               destination_project=dest_project)
    assert done["summary"]["conflict"] == 0, done["text"]
    assert done["changed"] is True
    outcomes = {(r["kind"], r["name"]): r["outcome"] for r in done["results"]}
    assert outcomes[("network", "app")] == "created"
    default_group = [r for r in done["results"]
                     if r["kind"] == "security_group" and r["name"] == "default"]
    assert default_group and default_group[0]["destination_id"] in {
        g.id for g in ct1.network.security_groups(project_id=dest_project, name="default")}
    compared = act("compare_tenant", full_config, export=doc,
                   destination_project=dest_project)
    assert compared["clean"] is True, [
        (d["name"], d.get("detail"), d.get("param")) for d in compared["differences"]]

    assert quota_values(ct1, dest_project) == QUOTAS
    assert {r["source_id"]: r["outcome"] for r in done["results"] if r["kind"] == "quota"} == {
        "compute": "updated", "network": "updated", "volume": "updated"}

    # the flavor keeps its id (free at ct1), its specs and its access (the tenant's project
    # there); the server group is made in the destination project
    flavor = ct1.compute.get_flavor(source_tenant["flavor"].id)
    assert (flavor.name, flavor.vcpus, flavor.ram, flavor.is_public) == (
        source_tenant["flavor"].name, 2, 256, False)
    specs = ct1.compute.fetch_flavor_extra_specs(flavor).extra_specs
    assert specs == {"hw:cpu_policy": "shared", "ceph_migrate:source_id": flavor.id}
    assert [a["tenant_id"] for a in ct1.compute.get_flavor_access(flavor)] == [dest_project]
    groups = [g for g in ct1.compute.server_groups(all_projects=True)
              if g.project_id == dest_project]
    assert [(g.name, g.policy) for g in groups] == [("spread", "anti-affinity")]

    router = ct1.network.get_router(next(r["destination_id"] for r in done["results"]
                                         if r["kind"] == "router"))
    assert router.external_gateway_info["network_id"] == dest_public
    assert router.routes == [{"destination": "10.77.0.0/16", "nexthop": "10.32.0.9"}]
    addresses = sorted(ip["ip_address"] for p in ct1.network.ports(device_id=router.id)
                       if p.device_owner == "network:router_interface" for ip in p.fixed_ips)
    assert addresses == ["10.31.0.1", "10.32.0.7"]

    # a re-run writes nothing; a network renamed at the destination is found again and kept
    settled = neutron_state(ct1, dest_project)
    again = act("import_tenant", full_config, export=doc,
                destination_project=dest_project)
    assert again["changed"] is False and set(again["summary"]) >= {"unchanged"}
    assert again["summary"]["unchanged"] == len(again["results"]), again["text"]
    assert neutron_state(ct1, dest_project) == settled
    renamed = next(r["destination_id"] for r in done["results"] if r["kind"] == "network")
    ct1.network.update_network(renamed, name="renamed-at-ct1")
    third = act("import_tenant", full_config, export=doc,
                destination_project=dest_project)
    assert third["changed"] is False
    mine = [r for r in third["results"] if r["destination_id"] == renamed]
    assert mine and "kept: name" in mine[0]["detail"]
    assert len([n for n in ct1.network.networks(project_id=dest_project)
                if n.name in ("app", "renamed-at-ct1")]) == 2

    # the rollback removes what was made, keeps the default group, and leaves ct1 as it was
    source_id = doc["project"]["id"]
    planned = act("rollback_tenant", full_config, source_project_id=source_id,
                  dry_run=True)
    assert neutron_state(ct1, dest_project)["network:%s" % renamed]
    assert {r["outcome"].split(";")[0] for r in planned["results"]} <= {
        "would be removed", "kept: adopted, not made by the pack",
        "kept: quotas stay as they were set"}
    people = {(a.user["id"], a.role["id"]) for a in
              ct1.identity.role_assignments(scope_project_id=dest_project)}
    undone = act("rollback_tenant", full_config, source_project_id=source_id)
    assert undone["changed"] is True
    # ct1's own accounts of the same names were adopted as they are: the rollback keeps them,
    # their roles and the project (which carried the pack's tag only)
    assert {(a.user["id"], a.role["id"]) for a in
            ct1.identity.role_assignments(scope_project_id=dest_project)} == people
    assert {u.name for u in ct1.identity.users()} >= {"tenant-user", "tenant-admin"}
    assert not [t for t in ct1.identity.get_project(dest_project).tags or []
                if t.startswith("ceph_migrate_source_id=")]
    after = neutron_state(ct1, dest_project)      # the same resources (revisions moved on)
    assert {k: v[0] if isinstance(v, tuple) else v for k, v in after.items()} == {
        k: v[0] if isinstance(v, tuple) else v for k, v in before.items()}
    assert not [g for g in ct1.network.security_groups(project_id=dest_project)
                if any(t.startswith("ceph_migrate_source_id=") for t in g.tags or [])]
    assert ct1.compute.find_flavor(source_tenant["flavor"].id, ignore_missing=True) is None
    assert not [g for g in ct1.compute.server_groups(all_projects=True)
                if g.project_id == dest_project]

    # adopt=true takes a destination network of the same name only if it is equal, and a
    # rollback then leaves it where it is (only the pack's tag goes)
    theirs = ct1.network.create_network(name="app", mtu=1400, project_id=dest_project)
    try:
        adopted = act("import_tenant", full_config, export=doc, translation=translation,
                      destination_project=dest_project, adopt=True, kinds=["network"])
        by_id = {r["destination_id"]: r["outcome"] for r in adopted["results"]
                 if r["kind"] == "network"}     # (the project always comes first)
        assert by_id[theirs.id] == "adopted"                   # app, mtu 1400: equal
        assert sorted(by_id.values()) == ["adopted", "created"]  # the other app (mtu 1500)
        act("rollback_tenant", full_config, source_project_id=source_id)
        kept = ct1.network.get_network(theirs.id)
        assert kept.name == "app" and not [t for t in kept.tags or []
                                           if t.startswith("ceph_migrate_source_id=")]
        assert [n.id for n in ct1.network.networks(project_id=dest_project)] == [theirs.id]
    finally:
        ct1.network.delete_network(theirs.id, ignore_missing=True)


IMAGE_BYTES = 4 * 1024 * 1024


def public_key():
    """A fresh OpenSSH public key (Nova checks the format)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


@pytest.fixture
def source_team(clouds):
    """A project the destination does not have: its users (one a group's member only), a group,
    their roles, a keypair, a network and an image shared with another project; removed
    afterwards."""
    admin = clouds["pa1-admin"]
    ids = admin.identity
    tag = uuid.uuid4().hex[:6]
    domain = ids.find_domain("Default")
    project = ids.create_project(name="team-%s" % tag, description="the team's", tags=["gold"],
                                 domain_id=domain.id)
    alice = ids.create_user(name="alice-%s" % tag, email="alice@example.org",
                            domain_id=domain.id, password=uuid.uuid4().hex)
    bob = ids.create_user(name="bob-%s" % tag, domain_id=domain.id, password=uuid.uuid4().hex)
    group = ids.create_group(name="ops-%s" % tag, description="on call", domain_id=domain.id)
    key = public_key()
    try:
        ids.add_user_to_group(bob, group)
        ids.assign_project_role_to_user(project, alice, ids.find_role("member"))
        ids.assign_project_role_to_group(project, group, ids.find_role("reader"))
        admin.compute.create_keypair(name="laptop", public_key=key, user_id=alice.id)
        network = admin.network.create_network(name="team-net", project_id=project.id)
        data = os.urandom(IMAGE_BYTES)
        image = admin.image.create_image(name="base", data=data, disk_format="raw",
                                         container_format="bare", owner=project.id,
                                         visibility="shared", tags=["golden"], os_distro="debian",
                                         min_disk=1)
        admin.image.add_member(image, member_id=admin.current_project_id)
        yield {"project": project, "alice": alice, "bob": bob, "group": group, "key": key,
               "tag": tag, "network": network, "image": admin.image.get_image(image.id),
               "data": data}
    finally:
        if "image" in locals():
            admin.image.delete_image(image.id, ignore_missing=True)
        admin.compute.delete_keypair("laptop", user_id=alice.id, ignore_missing=True)
        admin.network.delete_network(network.id, ignore_missing=True)
        for delete, obj in ((ids.delete_user, alice), (ids.delete_user, bob),
                            (ids.delete_group, group), (ids.delete_project, project)):
            delete(obj, ignore_missing=True)


def test_a_new_tenant_comes_with_its_project_people_roles_and_keys(
        full_config, clouds, openstack_facts, source_team):
    LocalActionService.DATASTORE.clear()
    ct1 = clouds["ct1-admin"]
    name = source_team["project"].name
    try:
        exported = act("export_tenant", full_config, project=name)
        doc = exported["document"]
        assert sorted(doc["resources"]["user"]) == sorted([source_team["alice"].id,
                                                           source_team["bob"].id])
        assert [k["params"]["public_key"] for k in doc["resources"]["keypair"].values()] == [
            source_team["key"]]

        pa1_admin = clouds["pa1-admin"].current_project_id
        ct1_admin = ct1.current_project_id
        translation = {"projects": {pa1_admin: ct1_admin}}
        # the dry run makes nothing, says the project and everything in it would be made
        dry = act("import_tenant", full_config, export=doc, dry_run=True, passwords="random",
                  translation=translation)
        assert dry["summary"]["conflict"] == 0, dry["text"]
        assert {r["outcome"] for r in dry["results"] if r["kind"] != "quota"} == {"created"}, \
            dry["text"]
        assert not list(ct1.identity.projects(name=name))

        # the plan: the same dry run, the quotas the tenant's use needs, room for the image
        plan = act("plan_tenant_migration", full_config, export=doc, translation=translation)
        assert plan["fits"] is True and plan["quotas"]["short"] == [], plan["text"]
        assert plan["quotas"]["used"]["network"]["networks"] == 1
        assert plan["capacity"]["images"]["needed_bytes"] == IMAGE_BYTES, plan["capacity"]
        assert plan["capacity"]["servers"]["free_vcpus"] > 0
        assert [r["outcome"] for r in plan["results"]] == [r["outcome"] for r in dry["results"]]
        # a destination without room for the image is refused before anything changes
        tight = dict(full_config, capacity={"reserve_gib": 100000})
        refused = act("plan_tenant_migration", tight, export=doc, translation=translation)
        assert refused["fits"] is False
        assert "free space or add OSDs first" in refused["capacity"]["images"]["detail"]
        # and quotas below what the tenant uses are said: the tenant's network, none allowed
        quota = doc["resources"]["quota"]
        low = dict(doc, resources=dict(doc["resources"], quota=dict(quota, network=dict(
            quota["network"], params=dict(quota["network"]["params"], networks=0)))))
        short = act("plan_tenant_migration", full_config, export=low, translation=translation)
        assert short["fits"] is False and short["quotas"]["short"] == [
            {"service": "network", "limit": "networks", "used": 1, "allowed": 0}]

        done = act("import_tenant", full_config, export=doc, passwords="random",
                   translation=translation)
        assert done["summary"]["conflict"] == 0, done["text"]
        project = ct1.identity.get_project(done["project"]["id"])
        assert (project.name, project.description) == (name, "the team's")
        assert sorted(project.tags) == sorted(["gold", "ceph_migrate_source_id=%s"
                                               % source_team["project"].id])
        users = {u.name: u for u in ct1.identity.users()}
        alice = users["alice-%s" % source_team["tag"]]
        bob = users["bob-%s" % source_team["tag"]]
        assert alice.email == "alice@example.org"
        members = [u.id for u in ct1.identity.group_users(
            next(ct1.identity.groups(name="ops-%s" % source_team["tag"])))]
        assert members == [bob.id]
        assert ct1.identity.validate_user_has_project_role(project, alice,
                                                           ct1.identity.find_role("member"))
        pair = ct1.compute.get_keypair("laptop", user_id=alice.id)
        assert pair.public_key == source_team["key"]
        # each random password is in the datastore, encrypted, and named (not shown) in the
        # result: alice logs in with hers, into the new project
        assert sorted(p["user"] for p in done["passwords"]) == sorted([alice.name, bob.name])
        key = next(p["datastore_key"] for p in done["passwords"] if p["user"] == alice.name)
        password = LocalActionService.DATASTORE[key]
        assert password not in json.dumps(done)
        login = openstack.connect(
            auth_url=openstack_facts["clouds"]["ct1"]["urls"]["identity"], username=alice.name,
            password=password, project_id=project.id, user_domain_name="Default")
        assert login.authorize()

        # the image came by Ceph: Glance serves the same bytes from the destination pool, with
        # the source's hash, tags, properties and members (translated)
        image = next(ct1.image.images(owner=project.id))
        source = source_team["image"]
        assert (image.name, image.hash_value, image.visibility, image.tags, image.min_disk) == (
            "base", source.hash_value, "shared", ["golden"], 1)
        assert image.os_distro == "debian"
        assert image.direct_url.split("/")[3] == full_config["pools"]["destination_glance_pool"]
        assert [m.member_id for m in ct1.image.members(image)] == [ct1_admin]
        served = b"".join(ct1.image.download_image(image, stream=True).iter_content(1 << 20))
        assert hashlib.sha256(served).digest() == hashlib.sha256(source_team["data"]).digest()

        again = act("import_tenant", full_config, export=doc, passwords="random")
        assert again["changed"] is False and again["passwords"] == []
        assert again["summary"]["unchanged"] == len(again["results"]), again["text"]
        compared = act("compare_tenant", full_config, export=doc)
        assert compared["clean"] is True, compared["differences"]

        # the rollback takes the keypair, the roles, the people and the project, emptied first
        undone = act("rollback_tenant", full_config,
                     source_project_id=source_team["project"].id)
        # (the new project's default security group is Neutron's own: adopted, kept)
        assert {(r["kind"], r["outcome"]) for r in undone["results"]
                if r["kind"] not in ("quota", "security_group", "security_group_rule")} == {
            (k, "removed") for k in ("project", "user", "group", "role_assignment", "keypair",
                                     "network", "image")}
        assert ct1.image.find_image(image.id, ignore_missing=True) is None
        assert ct1.identity.find_project(project.id, ignore_missing=True) is None
        assert ct1.identity.find_user(alice.id, ignore_missing=True) is None

        # by default the people the pack makes cannot log in: disabled, without a password;
        # and the image crosses again after the rollback (mirrored anew: another replica)
        again = act("import_tenant", full_config, export=doc, kinds=["project", "user", "image"])
        assert again["passwords"] == [] and again["summary"]["conflict"] == 0, again["text"]
        made = {u.name: u for u in ct1.identity.users()}[alice.name]
        assert made.is_enabled is False and made.id != alice.id
        image = next(ct1.image.images(owner=again["project"]["id"]))
        assert (image.status, image.hash_value) == ("active", source.hash_value)
    finally:
        run_python_action("rollback_tenant", full_config,
                          {"source_project_id": source_team["project"].id})


NEUTRON_KINDS = ("network", "subnet", "router", "security_group", "security_group_rule")


def test_os_migrates_files_bring_the_same_networks_as_the_cloud(
        full_config, clouds, openstack_facts, source_tenant, tmp_path):
    """OS Migrate's exported files (a stand-in writes them from pa1 in its layout) read as the
    export: imported at ct1, the destination compares clean against the export read from the
    cloud itself; the same source ids, so one mapping serves both."""
    import os_migrate_files

    LocalActionService.DATASTORE.clear()
    dest_project = openstack_facts["clouds"]["ct1"]["tenant_project_id"]
    dest_public = openstack_facts["clouds"]["ct1"]["network"]["public"]["id"]
    paths = os_migrate_files.write(clouds["pa1-admin"], source_tenant["project_id"],
                                   str(tmp_path))
    try:
        read = act("export_tenant", full_config, project="tenant", os_migrate_files=paths)
        assert read["external_networks"] == {source_tenant["public"]: ""}
        assert read["counts"]["network"] == 2 and read["counts"]["router"] == 1
        router = next(iter(read["document"]["resources"]["router"].values()))
        assert sorted(i["ip_address"] for i in router["params"]["interfaces"]) == [
            "10.31.0.1", "10.32.0.7"]
        translation = {"external_networks": {source_tenant["public"]: dest_public}}
        done = act("import_tenant", full_config, export=read["document"],
                   destination_project=dest_project, translation=translation)
        assert done["summary"]["conflict"] == 0, done["text"]
        cloud = act("export_tenant", full_config, project="tenant")["document"]
        compared = act("compare_tenant", full_config, export=dict(cloud, resources={
            k: v for k, v in cloud["resources"].items() if k in NEUTRON_KINDS}),
            destination_project=dest_project)
        assert compared["clean"] is True, compared["differences"]
        # and the cloud's own export finds everything there: a re-run through it writes nothing
        again = act("import_tenant", full_config, export=dict(cloud, resources={
            k: v for k, v in cloud["resources"].items() if k in NEUTRON_KINDS}),
            destination_project=dest_project, translation=translation)
        assert again["changed"] is False, again["text"]
    finally:
        run_python_action("rollback_tenant", full_config,
                          {"source_project_id": source_tenant["project_id"]})
