"""The pack in a real StackStorm 3.9 (sandbox/st2_sandbox.py), through StackStorm's own API as
its users type it: installed and configured by the README's commands, workflows started with
only what a user types, every gate answered by the account it names (and refused to anyone
else), the content checked on the real clusters; aliases as the chat bot runs them; both
sensors in StackStorm's sensor container; rules and the timer."""
import json
import uuid
import urllib.error
import re
import time

import openstack
import pytest
import yaml

from ceph_env import fingerprint, REPO, write_random
from lib.names import SOURCE_ID_KEY
from lib.settings import DESTINATION, SOURCE
from openstack_env import (cloud_fingerprint, create_source_volume, delete_quietly,
                           destination_sha, eventually, forget_migration, migrated, source_sha,
                           wait_gone)
from test_openstack_compute import addressed_server, flavor, head_sha, server, tenant_network
from st2_env import (CHAT_USER, COMPLETED, answer_gates, command_words, gate_user,
                     readme_blocks)

pytestmark = pytest.mark.stackstorm


NO_VOLUME = "0badc0de-0000-4000-8000-000000000000"      # a volume id no cloud has


def approve(inquiry):
    return True


def run_id(output):
    """The execution id `st2 run` prints ("id: <id>"; with --async: "st2 execution get <id>")."""
    match = re.search(r"^id: ([0-9a-f]{24})$|st2 execution get ([0-9a-f]{24})", output, re.M)
    assert match, "no execution id in:\n%s" % output
    return match.group(1) or match.group(2)


# --------------------------------------------------------------------------- install

def test_the_readme_install_commands_install_and_configure_the_pack(st2_pack):
    st2 = st2_pack["st2"]
    actions = st2.json("action", "list", "-p", "ceph_migrate", "-a", "ref", "runner_type")
    # every action, alias and rule of the checkout is registered, as its metadata says
    shipped = {"ceph_migrate." + m["name"]: m["runner_type"] for m in
               (yaml.safe_load(p.read_text()) for p in (REPO / "actions").glob("*.yaml"))}
    assert {a["ref"]: a["runner_type"] for a in actions} == shipped
    assert {s["ref"] for s in st2.json("sensor", "list", "-p", "ceph_migrate")} == {
        "ceph_migrate.MirrorSensor", "ceph_migrate.NotificationSensor"}
    assert len(st2.json("trigger", "list", "-p", "ceph_migrate")) == 6
    assert len(st2.json("rule", "list", "-p", "ceph_migrate")) == len(
        list((REPO / "rules").glob("*.yaml")))
    assert len(st2.json("action-alias", "list", "-p", "ceph_migrate")) == len(
        list((REPO / "aliases").glob("*.yaml")))
    # the config is registered, its secrets masked by the API and encrypted in the datastore
    registered = st2.api("GET", "/configs/ceph_migrate")
    assert registered["values"]["destination_cloud"]["password"] == "********"
    assert registered["values"]["approvals"] == st2_pack["config"]["approvals"]
    for name in st2_pack["secrets"]:
        key = st2.json("key", "get", name)
        assert key["encrypted"] is True and key["secret"] is True
        assert st2_pack["secrets"][name] not in json.dumps(key)
    res = st2.shell(["st2-validate-pack-config", "--schema-path",
                     "/opt/stackstorm/packs/ceph_migrate/config.schema.yaml", "--config-path",
                     "/opt/stackstorm/configs/ceph_migrate.yaml"])
    assert res.returncode == 0, res.stdout + res.stderr
    # what the sensor container needs (requirements.txt): the pack venv's keystoneauth1
    venv = "/opt/stackstorm/virtualenvs/ceph_migrate/bin/python"
    version = st2.shell([venv, "-c", "import keystoneauth1, importlib.metadata as m; "
                                     "print(m.version('keystoneauth1'))"]).stdout.strip()
    assert tuple(int(x) for x in version.split(".")[:2]) < (5, 14), version


# --------------------------------------------------------------------------- migrations

def test_migrate_volume_typed_as_in_the_readme(st2_pack, settings, full_config, clouds):
    """The README's first-run commands, word for word: the dry run, the run with only the
    volume id, the gates answered by the accounts they name (a wrong account refused first),
    the result; then a re-run changes nothing."""
    st2 = st2_pack["st2"]
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=64)
    started_ids = []
    try:
        source_sum = source_sha(settings, volume.id)
        before = (cloud_fingerprint(clouds), fingerprint(settings))
        lines = readme_blocks("Install in StackStorm")[1]
        values = {"<uuid>": volume.id}
        run_lines = [line for line in lines if line.startswith("st2 run ")]
        assert len(run_lines) == 2 and "dry_run=true" in run_lines[0]

        dry = st2.shell(_argv(st2, command_words(run_lines[0], values)))
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "status: succeeded" in dry.stdout and "dry run, nothing was changed" in dry.stdout
        assert (cloud_fingerprint(clouds), fingerprint(settings)) == before

        started = st2.shell(_argv(st2, command_words(run_lines[1], values)))
        assert started.returncode == 0, started.stdout + started.stderr
        execution_id = run_id(started.stdout)
        started_ids.append(execution_id)
        assert "status: paused" in started.stdout     # st2 run returns at the first gate

        # the README's gate commands, repeated until the execution ends
        gates = []
        while True:
            pending = [i for i in st2.inquiries() if i["top"] == execution_id]
            if not pending:
                ex = st2.execution(execution_id)
                if ex["status"] in COMPLETED:
                    break
                time.sleep(1)
                continue
            inquiry = pending[0]
            # listed after the API showed it: a gate stays pending until it is answered
            listed = st2.shell(_argv(st2, command_words(_line(lines, "st2 inquiry list"), {})))
            assert listed.returncode == 0, listed.stderr
            assert inquiry["id"] in listed.stdout, listed.stdout
            respond = command_words(_line(lines, "st2 inquiry respond"),
                                    {"<inquiry id>": inquiry["id"]})
            wrong = "tenant-admin" if gate_user(inquiry) == "ceph-admin" else "ceph-admin"
            refused = st2.shell(_argv(st2, respond), user=wrong)
            assert refused.returncode != 0 and "permission to respond" in (
                refused.stdout + refused.stderr), refused.stdout
            accepted = st2.shell(_argv(st2, respond), user=gate_user(inquiry))
            assert accepted.returncode == 0, accepted.stdout + accepted.stderr
            gates.append((inquiry["task"], gate_user(inquiry)))
        assert gates == [("approve_mirroring", "ceph-admin"), ("approve_cutover", "tenant-admin"),
                         ("approve_cleanup", "ceph-admin")]
        shown = st2.shell(_argv(st2, command_words(_line(lines, "st2 execution get"),
                                                   {"<execution id>": execution_id})))
        assert "status: succeeded" in shown.stdout, shown.stdout
        output = st2.execution(execution_id)["result"]["output"]
        assert output["outcome"] == ("migrated, verified and cleaned up; the source image is "
                                     "kept")
        new_id = output["volume"]["volume_id"]
        assert output["verified"]["verified"] is True
        assert destination_sha(settings, settings.pools.destination_cinder,
                               "volume-" + new_id) == source_sum
        assert [v.id for v in migrated(clouds, volume.id)] == [new_id]

        # a re-run finds the migration done and changes nothing
        after = (cloud_fingerprint(clouds), fingerprint(settings))
        again = st2.shell(_argv(st2, command_words(run_lines[1], values)))
        rerun = st2.wait(run_id(again.stdout), lambda e: e["status"] in COMPLETED, 300)
        assert rerun["status"] == "succeeded", rerun["result"]
        assert rerun["result"]["output"]["outcome"] == (
            "already migrated as %s; nothing left to do" % new_id)
        assert (cloud_fingerprint(clouds), fingerprint(settings)) == after
    finally:
        for execution_id in started_ids:
            st2.cancel(execution_id)
        forget_migration(settings, full_config, clouds, volume.id)


def _line(lines, prefix):
    found = [line for line in lines if line.startswith(prefix)]
    assert len(found) == 1, "README block has %d '%s' lines" % (len(found), prefix)
    return found[0]


def _argv(st2, words):
    return [st2.facts["st2"]] + words[1:] if words[0] == "st2" else words


def test_migrate_boot_volume_with_only_the_volume_id(st2_pack, settings, full_config, clouds,
                                                     openstack_facts):
    """Procedure 2 as a user starts it; a wrong account is refused at every gate; then a
    re-run changes nothing and a rollback (through its own gate) leaves both sides as before."""
    st2 = st2_pack["st2"]
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=64, bootable=True)
    before = (cloud_fingerprint(clouds), fingerprint(settings))
    started = []
    try:
        source_sum = source_sha(settings, volume.id)
        execution_id = run_id(st2.run("run", "ceph_migrate.migrate_boot_volume",
                                      "volume_id=%s" % volume.id).stdout)
        started.append(execution_id)
        done = answer_gates(st2, execution_id, approve, wrong_user="stranger")
        assert done["status"] == "succeeded", done["result"]
        assert [(g["task"], gate_user(g)) for g in done["_gates"]] == [
            ("approve_mirroring", "ceph-admin"), ("approve_cutover", "tenant-admin"),
            ("approve_cleanup", "ceph-admin")]
        output = done["result"]["output"]
        new_id = output["volume"]["volume_id"]
        dest = clouds["ct1-tenant"].block_storage.get_volume(new_id)
        assert dest.is_bootable and dest.status == "available"
        assert output["verified"]["sha256"] == source_sum
        assert destination_sha(settings, settings.pools.destination_cinder,
                               "volume-" + new_id) == source_sum

        after = (cloud_fingerprint(clouds), fingerprint(settings))
        rerun_id = run_id(st2.run("run", "ceph_migrate.migrate_boot_volume",
                                  "volume_id=%s" % volume.id).stdout)
        rerun = st2.wait(rerun_id, lambda e: e["status"] in COMPLETED, 300)
        assert rerun["status"] == "succeeded", rerun["result"]
        assert "already migrated as %s" % new_id in rerun["result"]["output"]["outcome"]
        assert (cloud_fingerprint(clouds), fingerprint(settings)) == after

        rollback_id = run_id(st2.run("run", "ceph_migrate.rollback", "volume_id=%s" % volume.id,
                                     "procedure=boot").stdout)
        started.append(rollback_id)
        rolled = answer_gates(st2, rollback_id, approve, wrong_user="tenant-admin")
        assert rolled["status"] == "succeeded", rolled["result"]
        wait_gone(clouds["ct1-admin"], new_id)
        assert eventually(lambda: (cloud_fingerprint(clouds), fingerprint(settings)) == before)
    finally:
        for execution_id in started:
            st2.cancel(execution_id)
        forget_migration(settings, full_config, clouds, volume.id)
        for image in clouds["pa1-admin"].image.images():
            if (image.properties or {}).get(SOURCE_ID_KEY) == volume.id:
                delete_quietly(clouds["pa1-admin"], "image", image.id)


def migrated_from_chat_while_written_to(st2, settings, spec, words, started, saying=""):
    """WORDS typed in chat; every gate approved by its account, the tenant writing 8 MiB into
    SPEC until it approves the cutover (whose question must contain SAYING). Returns the
    finished execution."""
    def tenant_writes_then_approves(inquiry):
        if inquiry["task"] == "approve_cutover":
            assert saying in json.dumps(inquiry["schema"])
            write_random(settings, SOURCE, spec, 8, offset_mib=128)
        return True
    execution_id = st2.chat(words)["execution"]["id"]
    started.append(execution_id)
    done = answer_gates(st2, execution_id, tenant_writes_then_approves)
    assert done["status"] == "succeeded", done["result"]
    return done


def rolled_back_to(before, st2, settings, clouds, volume_id, started):
    """`st2 run ceph_migrate.rollback` of a data volume, approved by the Ceph admin: both sides
    come back to BEFORE."""
    rollback_id = run_id(st2.run("run", "ceph_migrate.rollback", "volume_id=%s" % volume_id,
                                 "procedure=data").stdout)
    started.append(rollback_id)
    rolled = answer_gates(st2, rollback_id, approve)
    assert rolled["status"] == "succeeded", rolled["result"]
    assert eventually(lambda: (cloud_fingerprint(clouds), fingerprint(settings)) == before)


def test_rollback_after_a_rejected_cutover(st2_pack, settings, full_config, clouds):
    """Mirroring approved (method=mirror, the runbook's), the cutover rejected by the tenant
    admin: the run stops saying mirroring was left on; `rollback` (approved by the Ceph admin)
    leaves both sides as they were before the migration."""
    st2 = st2_pack["st2"]
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=64)
    before = (cloud_fingerprint(clouds), fingerprint(settings))
    started = []
    try:
        execution_id = run_id(st2.run("run", "ceph_migrate.migrate_volume",
                                      "volume_id=%s" % volume.id, "method=mirror").stdout)
        started.append(execution_id)
        stopped = answer_gates(st2, execution_id, lambda i: i["task"] != "approve_cutover")
        assert stopped["status"] == "failed", (stopped["_gates"], stopped.get("result"))
        assert [(g["task"], g["approved"]) for g in stopped["_gates"]] == [
            ("approve_mirroring", True), ("approve_cutover", False)]
        outcome = stopped["result"]["output"]["outcome"]
        assert "rejected" in outcome and "rollback" in outcome, outcome
        assert not migrated(clouds, volume.id)

        rolled_back_to(before, st2, settings, clouds, volume.id, started)
    finally:
        for execution_id in started:
            st2.cancel(execution_id)
        forget_migration(settings, full_config, clouds, volume.id)


def test_export_diff_rolled_back_at_the_cutover_then_migrated_while_written_to(
        st2_pack, settings, full_config, clouds):
    """method=export_diff in StackStorm: the cutover rejected after the pre-copy, the rollback
    leaves both sides as they were; then a full run started from chat, the tenant writing until
    it approves the cutover: every write arrives, only the delta is checked inside the window,
    the chat reply names the content digest, and no snapshot of the pack's is left on either
    side."""
    st2 = st2_pack["st2"]
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=64)
    spec = "%s/volume-%s" % (settings.pools.mirrored_cinder, volume.id)
    before = (cloud_fingerprint(clouds), fingerprint(settings))
    started = []
    try:
        execution_id = run_id(st2.run("run", "ceph_migrate.migrate_volume", "volume_id=%s"
                                      % volume.id, "method=export_diff").stdout)
        started.append(execution_id)
        stopped = answer_gates(st2, execution_id, lambda i: i["task"] != "approve_cutover")
        assert stopped["status"] == "failed", (stopped["_gates"], stopped.get("result"))
        output = stopped["result"]["output"]
        assert "rejected by the tenant admin" in output["outcome"]
        assert output["left_changed"] == [
            "sync snapshots (ceph_migrate-sync-N) of volume-%s are at the source" % volume.id,
            "the copy volume-%s is in the destination Cinder pool, not yet a volume" % volume.id]
        rolled_back_to(before, st2, settings, clouds, volume.id, started)

        # typed in chat this time, as an operator would
        done = migrated_from_chat_while_written_to(
            st2, settings, spec, "migrate volume %s procedure=data method=export_diff"
            % volume.id, started)
        reply = st2.chat_reply(done["id"], 300)
        assert "Verified: content digest" in reply and "inside it" in reply, reply
        output = done["result"]["output"]
        assert output["outcome"] == "migrated, verified and cleaned up; the source image is kept"
        assert output["verified"]["since"] is not None
        new_id = output["volume"]["volume_id"]
        assert destination_sha(settings, settings.pools.destination_cinder,
                               "volume-" + new_id) == source_sha(settings, volume.id)
        assert settings.rbd(SOURCE).run("snap", "ls", spec) == []
        assert settings.rbd(DESTINATION).run("snap", "ls", "%s/volume-%s" % (
            settings.pools.destination_cinder, new_id)) == []
    finally:
        for execution_id in started:
            st2.cancel(execution_id)
        forget_migration(settings, full_config, clouds, volume.id)


def test_promote_in_place_from_chat_while_written_to(st2_pack, settings, full_config, clouds):
    """placement=promote typed in chat: the tenant writes until it approves the cutover, the
    replica becomes the volume in the mirrored pool (no copy), checked after the window; both
    sides end as plain images, the source writable again."""
    st2 = st2_pack["st2"]
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=32)
    pool = settings.pools.mirrored_cinder
    spec = "%s/volume-%s" % (pool, volume.id)
    started = []
    try:
        done = migrated_from_chat_while_written_to(
            st2, settings, spec, "migrate volume %s procedure=data placement=promote"
            % volume.id, started, saying="demoted (read-only)")
        assert [g["task"] for g in done["_gates"]] == [
            "approve_mirroring", "approve_cutover", "approve_cleanup"]
        output = done["result"]["output"]
        assert output["outcome"] == "migrated, verified and cleaned up; the source image is kept"
        new_id = output["volume"]["volume_id"]
        # placed in place: the volume is the promoted replica, in the mirrored pool
        assert output["volume"]["rbd_image"] == "%s/volume-%s" % (pool, new_id)
        source_sum = source_sha(settings, volume.id)
        assert destination_sha(settings, pool, "volume-" + new_id) == source_sum
        assert output["verified"]["sha256"] == source_sum
        reply = st2.chat_reply(done["id"], 300)
        assert "Verified: sha256 %s" % source_sum in reply, reply
        for side, image in ((SOURCE, spec), (DESTINATION, "%s/volume-%s" % (pool, new_id))):
            info = settings.rbd(side).run("info", image)
            assert (info.get("mirroring") or {}).get("state", "disabled") == "disabled"
            assert settings.rbd(side).run("snap", "ls", image) == []
    finally:
        for execution_id in started:
            st2.cancel(execution_id)
        forget_migration(settings, full_config, clouds, volume.id)


def test_every_workflow_dry_run_changes_nothing(st2_pack, settings, clouds):
    st2 = st2_pack["st2"]
    data = create_source_volume(clouds, settings, size_gib=1, fill_mib=0)
    boot = create_source_volume(clouds, settings, size_gib=1, fill_mib=0, bootable=True)
    try:
        before = (cloud_fingerprint(clouds), fingerprint(settings))
        runs = {
            "migrate_volume": ["volume_id=%s" % data.id],
            "migrate_boot_volume": ["volume_id=%s" % boot.id],
            "migrate_batch": ["volumes=%s,%s" % (data.id, boot.id)],
            "rollback": ["volume_id=%s" % data.id, "procedure=data"],
            "migrate_tenant_infra": ["project=tenant", "destination_project=tenant"],
            "migrate_tenant": ["project=tenant", "destination_project=tenant"],
        }
        for workflow, params in runs.items():
            shown = st2.run("run", "ceph_migrate.%s" % workflow, *(params + ["dry_run=true"]))
            assert "status: succeeded" in shown.stdout, (workflow, shown.stdout[-3000:])
            output = st2.execution(run_id(shown.stdout))["result"]["output"]
            assert "dry run" in json.dumps(output), (workflow, output)
        assert (cloud_fingerprint(clouds), fingerprint(settings)) == before
    finally:
        for volume in (data, boot):
            delete_quietly(clouds["pa1-admin"], "volume", volume.id)


def test_a_tenants_networks_through_stackstorm_mapping_in_its_datastore(st2_pack, clouds,
                                                                        openstack_facts):
    """`migrate tenant tenant to tenant` typed in chat: the tenant admin's gate, the reply;
    the mapping kept in StackStorm's datastore between executions (a re-run with `st2 run`
    asks nothing), rollback_tenant."""
    st2 = st2_pack["st2"]
    net = clouds["pa1-tenant"].network
    network = net.create_network(name="st2-net")
    subnet = net.create_subnet(network_id=network.id, ip_version=4, cidr="10.41.0.0/24",
                               name="st2-sub")
    group = net.create_security_group(name="st2-sg")
    net.create_security_group_rule(security_group_id=group.id, direction="ingress",
                                   protocol="tcp", port_range_min=22, port_range_max=22)
    source_project = network.project_id
    ct1 = clouds["ct1-admin"].network
    dest_project = openstack_facts["clouds"]["ct1"]["tenant_project_id"]
    try:
        execution_id = st2.chat("migrate tenant tenant to tenant")["execution"]["id"]
        done = answer_gates(st2, execution_id, lambda inquiry: True)
        assert [(g["task"], gate_user(g)) for g in done["_gates"]] == [
            ("approve_import", "tenant-admin")], done["_gates"]
        output = done["result"]["output"]
        assert done["status"] == "succeeded", output
        assert output["outcome"].startswith("migrated and compared clean"), output
        reply = st2.chat_reply(execution_id, 300)
        assert "Tenant tenant -> tenant: succeeded; migrated and compared clean" in reply, reply
        assert [n.name for n in ct1.networks(project_id=dest_project)] == ["st2-net"]
        key = st2.api("GET", "/keys/ceph_migrate.tenant_map.%s" % source_project)
        assert network.id in json.loads(key["value"])["entries"]["network"]

        again = st2.run("run", "ceph_migrate.migrate_tenant_infra", "project=tenant",
                        "destination_project=tenant")
        assert "status: succeeded" in again.stdout, again.stdout[-2000:]
        assert st2.execution(run_id(again.stdout))["result"]["output"]["outcome"] == (
            "already there, compared clean; nothing was changed")
    finally:
        undone = st2.run("run", "ceph_migrate.rollback_tenant",
                         "source_project_id=%s" % source_project, check=False)
        for kind, ident in (("security_group", group.id), ("subnet", subnet.id),
                            ("network", network.id)):
            getattr(net, "delete_" + kind)(ident, ignore_missing=True)
    assert "status: succeeded" in undone.stdout, undone.stdout[-2000:]
    assert [n.name for n in ct1.networks(project_id=dest_project)] == []


def test_a_new_tenant_from_chat_its_passwords_only_in_the_encrypted_datastore(
        st2_pack, clouds, openstack_facts):
    """`migrate tenant <p> as a new project passwords=random` from chat: the project made at
    ct1 with its user and role; the user's random password in StackStorm's datastore,
    encrypted (st2 key get --decrypt gives it, and it logs in), never in the execution, its
    children or the chat reply."""
    st2 = st2_pack["st2"]
    admin = clouds["pa1-admin"]
    ids = admin.identity
    tag = uuid.uuid4().hex[:6]
    domain = ids.find_domain("Default")
    project = ids.create_project(name="chat-%s" % tag, domain_id=domain.id)
    user = ids.create_user(name="carol-%s" % tag, domain_id=domain.id, password=tag * 4)
    ct1 = clouds["ct1-admin"].identity
    try:
        ids.assign_project_role_to_user(project, user, ids.find_role("member"))
        sent = st2.chat("migrate tenant %s as a new project passwords=random" % project.name)
        assert "Migrating tenant %s to a project of its name" % project.name in \
            sent["message"], sent["message"]
        execution_id = sent["execution"]["id"]
        done = answer_gates(st2, execution_id, lambda inquiry: True)
        output = done["result"]["output"]
        assert done["status"] == "succeeded", output
        made = output["destination_project"]
        assert made["name"] == project.name and made["id"] != project.id
        carol = next(ct1.users(name=user.name))
        assert ct1.validate_user_has_project_role(made["id"], carol.id,
                                                  ct1.find_role("member"))
        key = "ceph_migrate.tenant_password.%s" % carol.id
        assert output["passwords"] == [{"user": user.name, "destination_id": carol.id,
                                        "datastore_key": key}]
        stored = st2.api("GET", "/keys/%s" % key)
        assert stored["encrypted"] is True
        password = st2.api("GET", "/keys/%s?decrypt=true" % key)["value"]
        login = openstack.connect(
            auth_url=openstack_facts["clouds"]["ct1"]["urls"]["identity"], username=user.name,
            password=password, project_id=made["id"], user_domain_name="Default")
        assert login.authorize()
        reply = st2.chat_reply(execution_id, 300)
        assert "password of %s: st2 key get %s --decrypt" % (user.name, key) in reply, reply
        seen = json.dumps([st2.execution(execution_id)] + [
            st2.execution(c["id"]) for c in st2.children(execution_id)]) + reply
        assert password not in seen
    finally:
        undone = st2.run("run", "ceph_migrate.rollback_tenant",
                         "source_project_id=%s" % project.id, check=False)
        ids.delete_user(user, ignore_missing=True)
        ids.delete_project(project, ignore_missing=True)
    assert "status: succeeded" in undone.stdout, undone.stdout[-2000:]
    assert not list(ct1.projects(name=project.name))
    assert not list(ct1.users(name=user.name))


def test_a_server_described_and_planned_through_stackstorm(st2_pack, clouds):
    """`st2 run` of the server steps as an operator types them: describe_server reads a
    volume-backed server; plan_server_migration reports, without failing, what is not at the
    destination yet (its network); prepare_ports and create_server refuse cleanly before the
    tenant crossed, release_source_server before a counterpart stands; stop_source_server
    and restore_source_server stop the source and start it again."""
    st2 = st2_pack["st2"]
    tenant, admin = clouds["pa1-tenant"], clouds["pa1-admin"]
    made = []           # what the test creates, undone in reverse order
    try:
        net, _ = tenant_network(tenant, made, name="st2srv")
        volume = tenant.block_storage.create_volume(name="st2srv", size=1, volume_type="ceph")
        made.append(lambda: tenant.block_storage.delete_volume(volume.id, ignore_missing=True))
        tenant.block_storage.wait_for_status(volume, "available", failures=["error"], interval=1,
                                             wait=120)
        tenant.block_storage.set_volume_bootable_status(volume, True)
        vm = server(tenant, made, flavor_id=flavor(admin, made, disk=0).id,
                    networks=[{"uuid": net.id}],
                    block_device_mapping=[{"boot_index": 0, "uuid": volume.id,
                                           "source_type": "volume", "destination_type": "volume"}])

        def run(action, *params):
            done = st2.run("run", "ceph_migrate." + action, "server_id=" + vm.id, *params,
                           check=False)
            return st2.execution(run_id(done.stdout))

        described = run("describe_server")
        assert described["status"] == "succeeded", described["result"]
        seen = described["result"]["result"]
        assert (seen["boots_from"], seen["refusals"]) == ("volume", [])
        assert [(d["role"], d["volume_id"]) for d in seen["disks"]] == [("root", volume.id)]
        planned = run("plan_server_migration")
        assert planned["status"] == "succeeded", planned["result"]
        checks = {c["check"]: c for c in planned["result"]["result"]["checks"]}
        assert checks["the server can be moved"]["ok"] is True
        assert not checks["its references are at the destination"]["ok"]
        assert "network %s is not at the destination" % net.id in \
            checks["its references are at the destination"]["detail"]
        refused = run("prepare_ports", "dry_run=true")
        assert refused["status"] == "failed"
        assert "migrate the tenant's infrastructure first" in refused["result"]["result"]["error"]
        refused = run("create_server", "dry_run=true")
        assert refused["status"] == "failed"
        assert "migrate the tenant's infrastructure first" in refused["result"]["result"]["error"]
        refused = run("release_source_server")
        assert refused["status"] == "failed"
        assert "no counterpart" in refused["result"]["result"]["error"]
        # the source side of a cutover and its undo: stopped (tagged: it ran), started again
        stopped = run("stop_source_server")
        assert stopped["status"] == "succeeded", stopped["result"]
        assert stopped["result"]["result"]["was_running"] is True
        assert admin.compute.get_server(vm.id).status == "SHUTOFF"
        restored = run("restore_source_server")
        assert restored["status"] == "succeeded", restored["result"]
        assert restored["result"]["result"]["done"] == ["started"]
        back = admin.compute.get_server(vm.id)
        assert (back.status, back.tags) == ("ACTIVE", [])
    finally:
        for undo in reversed(made):
            try:
                undo()
            except Exception:
                pass


# --------------------------------------------------------------------------- chat

def test_a_batch_of_three_from_chat_runs_two_at_a_time(st2_pack, settings, full_config, clouds):
    """`migrate volumes a,b,c concurrency=2` from chat, every gate approved from chat by the
    account it names (`approve gate <id>`): the three migrate side by side, at most two at a
    time, each verified; the chat replies read as an operator reads them."""
    st2 = st2_pack["st2"]
    volumes = [create_source_volume(clouds, settings, size_gib=1, fill_mib=64) for _ in range(3)]
    ids = [v.id for v in volumes]
    root = None
    replies = []

    def approve_from_chat(inquiry, verdict, user):
        if user == "tenant-admin":      # tina asked for the batch: not her own cutovers
            own = st2.chat("approve gate %s" % inquiry["id"], user=user, chat_user="tina")
            refusal = st2.chat_reply(own["execution"]["id"], 120)
            assert "'tina' started this migration and may not approve its cutover" in refusal, \
                refusal
        sent = st2.chat("approve gate %s" % inquiry["id"], user=user, chat_user=CHAT_USER[user])
        assert sent["message"].startswith("Answering gate %s" % inquiry["id"])
        replies.append(st2.chat_reply(sent["execution"]["id"], 120))

    try:
        sums = {v: source_sha(settings, v) for v in ids}
        sent = st2.chat("migrate volumes %s concurrency=2" % ",".join(ids), chat_user="tina")
        assert "Migrating 3 volume(s), 2 at a time" in sent["message"], sent["message"]
        root = sent["execution"]["id"]
        done = answer_gates(st2, root, approve, respond=approve_from_chat, timeout=1500)
        # a string (pytest cuts a dict's repr): each volume's own outcome if one failed
        assert done["status"] == "succeeded", json.dumps(done["result"], indent=1)[:8000]
        # the volumes' gates never pause the batch (StackStorm 3.9 may not resume a with-items
        # parent whose subworkflows paused side by side: st2#4950)
        assert "paused" not in [entry["status"] for entry in done["log"]], done["log"]
        assert len(done["_gates"]) == 9
        assert all("approved: the workflow goes on" in r for r in replies), replies
        for item in done["result"]["output"]["results"]:
            assert item["status"] == "succeeded", item
            assert item["verified"]["verified"] is True
            new_id = item["volume"]["volume_id"]
            assert destination_sha(settings, settings.pools.destination_cinder,
                                   "volume-" + new_id) == sums[item["volume_id"]]
        # concurrency: the volumes' runs overlap, never more than two at once
        items = st2.batch_items(root)
        assert sorted(i["parameters"]["volume_id"] for i in items) == sorted(ids)
        spans = [(c["start_timestamp"], c["end_timestamp"]) for c in items]
        overlap = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
        assert overlap == 2, spans
        reply = st2.chat_reply(root)
        assert reply.startswith("Batch succeeded: 3 of 3 volumes done"), reply
        for volume_id in ids:
            assert re.search(r"%s\s+succeeded\s+data\s+[0-9a-f-]{36}" % volume_id, reply), reply
    finally:
        if root:
            st2.cancel(root)
            for item in st2.batch_items(root):
                st2.cancel(item["id"])
        for volume_id in ids:
            forget_migration(settings, full_config, clouds, volume_id)


def test_a_gate_rejected_from_chat_and_a_wrong_account_refused(st2_pack, settings, clouds):
    st2 = st2_pack["st2"]
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=0)
    root = None
    try:
        before = (cloud_fingerprint(clouds), fingerprint(settings))
        sent = st2.chat("migrate data volume %s" % volume.id)
        assert sent["alias"] == "ceph_migrate.migrate_one_volume"
        assert "Migrating volume %s (procedure data)" % volume.id in sent["message"]
        root = sent["execution"]["id"]

        def reject_from_chat(inquiry, verdict, user):
            # the bot's account may answer this gate, but the chat user is not the Ceph admin
            wrong = st2.chat("approve gate %s" % inquiry["id"], user=user, chat_user="alice")
            refusal = st2.chat_reply(wrong["execution"]["id"], 120)
            assert refusal.startswith("Could not answer gate %s" % inquiry["id"])
            assert "chat user 'alice' may not answer the ceph_admin gate" in refusal, refusal
            # a chat user of the gate through a bot account the gate does not name
            wrong = st2.chat("approve gate %s" % inquiry["id"], user="tenant-admin",
                             chat_user=CHAT_USER[user])
            refusal = st2.chat_reply(wrong["execution"]["id"], 120)
            assert refusal.startswith("Could not answer gate %s" % inquiry["id"])
            assert "permission to respond" in refusal, refusal
            rejected = st2.chat("reject gate %s" % inquiry["id"], user=user,
                                chat_user=CHAT_USER[user])
            assert "rejected: the workflow stops cleanly" in st2.chat_reply(
                rejected["execution"]["id"], 120)

        done = answer_gates(st2, root, lambda i: False, respond=reject_from_chat)
        # a batch item reports, never fails (its children say why if it did)
        assert done["status"] == "succeeded", json.dumps(
            [done.get("result")] + [(c["action"]["ref"], c["status"])
                                    for c in st2.children(root)], indent=1)[:8000]
        assert done["result"]["output"]["status"] == "failed"
        reply = st2.chat_reply(root)
        assert reply.startswith("Volume %s: failed (data procedure)" % volume.id), reply
        assert "rejected by the Ceph admin before mirroring; nothing was changed" in reply
        assert (cloud_fingerprint(clouds), fingerprint(settings)) == before
    finally:
        if root:
            st2.cancel(root)
        delete_quietly(clouds["pa1-admin"], "volume", volume.id)


MISSING_SERVER = "00000000-0000-4000-8000-00000000dead"


def test_plan_and_status_from_chat(st2_pack, settings, clouds):
    st2 = st2_pack["st2"]
    data = create_source_volume(clouds, settings, size_gib=1, fill_mib=0)
    boot = create_source_volume(clouds, settings, size_gib=1, fill_mib=0, bootable=True)
    try:
        replies = {}
        for command in ("plan migration of volume %s" % data.id,
                        "plan boot migration of volume %s" % boot.id,
                        "migration status of image volume-%s" % data.id,
                        "migrate servers %s dry_run=true" % MISSING_SERVER):
            sent = st2.chat(command)
            replies[command.split(" of ")[0]] = st2.chat_reply(sent["execution"]["id"], 300)
        plan = replies["plan migration"]
        assert plan.startswith("Plan for volume %s: all checks pass" % data.id), plan
        assert "[ok] volume type is not encrypted" in plan and "Stages:" in plan
        boot_plan = replies["plan boot migration"]
        assert boot.id in boot_plan and "all checks pass" in boot_plan, boot_plan
        status = replies["migration status"]
        assert "volume-%s" % data.id in status, status
        # a wave's dry run over a server the source does not have: its line says so
        servers = replies["migrate servers %s dry_run=true" % MISSING_SERVER]
        assert servers.startswith("Servers failed: ") and MISSING_SERVER in servers, servers
    finally:
        for volume in (data, boot):
            delete_quietly(clouds["pa1-admin"], "volume", volume.id)


# --------------------------------------------------------------------------- validation

def test_the_local_runner_refuses_what_stackstorm_refuses(st2_pack):
    """Every call of tests/param_cases.py POSTed to the real API (/v1/executions): StackStorm
    accepts (201) or refuses (400) it exactly as the table and the local runner say."""
    from param_cases import CASES
    from runner.actions import ParameterError, action_metadata, check_call

    st2 = st2_pack["st2"]
    disagree, accepted = [], []
    for case in CASES:
        try:
            check_call(action_metadata(case.ref), case.params)
            local = True
        except ParameterError:
            local = False
        try:
            execution = st2.api("POST", "/executions", {"action": case.ref,
                                                        "parameters": case.params})
            real, detail = True, execution["id"]
            accepted.append(execution["id"])
        except urllib.error.HTTPError as exc:
            real, detail = False, "HTTP %d %s" % (exc.code, exc.read()[:300])
            assert exc.code == 400, (case, detail)
        if not (real == local == case.accepted):
            disagree.append((case.ref, case.params, case.accepted, local, real, detail))
    assert not disagree, "\n".join(map(str, disagree))
    assert len(accepted) >= 10 and len(accepted) < len(CASES) - 10
    for execution_id in accepted:      # harmless calls: let them end, nothing left running
        st2.wait(execution_id, lambda e: e["status"] in COMPLETED, 300)


# --------------------------------------------------------------------------- sensors, rules

def trigger_instances(st2, trigger, match, timeout=180):
    """Payloads of TRIGGER's instances for which match(payload) holds, waiting up to TIMEOUT
    for the first one."""
    deadline = time.monotonic() + timeout
    while True:
        found = [t for t in st2.api("GET", "/triggerinstances?trigger=%s&limit=200" % trigger)
                 if match(t["payload"])]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(2)


def test_sensors_in_the_sensor_container(st2_pack, settings, clouds, broker_proxies):
    """Both sensors as StackStorm runs them: a real sync seen by the mirror sensor; a real
    Glance upload reaching image_status through the broker, posted to chat by a rule enabled
    for the test; with the brokers unreachable, the API polling fallback reports a marked
    volume's creation and deletion; the broker back, notifications flow again."""
    st2 = st2_pack["st2"]
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=16, bootable=True)
    image = "volume-%s" % volume.id
    pa1 = clouds["pa1-admin"]
    made = []
    try:
        # rbd-mirror: the replica's progress and the sync, as trigger instances
        st2.run("run", "ceph_migrate.enable_mirroring", "image=%s" % image)
        synced = trigger_instances(st2, "ceph_migrate.mirror_synced",
                                   lambda p: p.get("image") == image)
        assert synced and synced[0]["payload"]["volume_id"] == volume.id, synced

        # a Glance upload: image.activate -> image_status -> rule -> chatops.post_message
        st2.run("rule", "enable", "ceph_migrate.post_image_status")
        try:
            shown = st2.run("run", "ceph_migrate.upload_volume_to_image",
                            "volume_id=%s" % volume.id)
            uploaded = st2.execution(run_id(shown.stdout))["result"]["result"]
            made.append(("image", uploaded["image_id"]))
            active = trigger_instances(st2, "ceph_migrate.image_status", lambda p: (
                p["image_id"] == uploaded["image_id"] and p["status"] == "active"))
            assert active and active[0]["payload"]["event_type"] != "poll", active
            assert active[0]["payload"]["source_id"] == volume.id
            posted = _rule_execution(st2, "ceph_migrate.post_image_status", active[0]["id"])
            message = posted["parameters"]["message"]
            assert "[source] Glance image %s" % uploaded["image_id"] in message, message
            assert "is active" in message and volume.id in message, message
        finally:
            st2.run("rule", "disable", "ceph_migrate.post_image_status")

        # the brokers unreachable: the sensor polls the APIs and reports what they show
        for proxy in broker_proxies.values():
            proxy.cut()
        try:
            marked = pa1.block_storage.create_volume(
                size=1, name="sensor-poll", metadata={SOURCE_ID_KEY: volume.id})
            made.append(("volume", marked.id))
            seen = trigger_instances(st2, "ceph_migrate.volume_status", lambda p: (
                p["volume_id"] == marked.id and p["event_type"] == "poll"))
            assert seen, "the fallback did not report the new volume"
            pa1.block_storage.wait_for_status(marked, "available", interval=1, wait=120)
            pa1.block_storage.delete_volume(marked)
            wait_gone(pa1, marked.id)
            gone = trigger_instances(st2, "ceph_migrate.volume_status", lambda p: (
                p["volume_id"] == marked.id and p["status"] == "deleted"))
            assert gone and gone[0]["payload"]["event_type"] == "poll", gone
        finally:
            for proxy in broker_proxies.values():
                proxy.restore()
        # reconnected (within max_backoff): a notification arrives through the broker again
        for proxy in broker_proxies.values():
            proxy.wait_connected()
        time.sleep(2)           # the sensor declares and binds its queue right after connecting
        again = pa1.block_storage.create_volume(
            size=1, name="sensor-broker", metadata={SOURCE_ID_KEY: volume.id})
        made.append(("volume", again.id))
        back = trigger_instances(st2, "ceph_migrate.volume_status", lambda p: (
            p["volume_id"] == again.id and p["event_type"].startswith("volume.")))
        assert back, "no notification after the broker came back"
    finally:
        st2.run("run", "ceph_migrate.disable_mirroring", "image=%s" % image,
                "discard_replica=true", check=False)
        for kind, resource_id in made:
            delete_quietly(pa1, kind, resource_id)
        delete_quietly(pa1, "volume", volume.id)


def _rule_execution(st2, rule, trigger_instance_id, timeout=120):
    """The execution a rule started for a trigger instance (its enforcement)."""
    deadline = time.monotonic() + timeout
    while True:
        for enforcement in st2.api("GET", "/ruleenforcements?rule_ref=%s&limit=50" % rule):
            if enforcement.get("trigger_instance_id") == trigger_instance_id and \
                    enforcement.get("execution_id"):
                return st2.wait(enforcement["execution_id"],
                                lambda e: e["status"] in COMPLETED, timeout)
        assert time.monotonic() < deadline, "rule %s did not fire" % rule
        time.sleep(1)


def test_the_maintenance_window_rule_and_its_timer(st2_pack):
    """The CronTimer of scheduled_maintenance_batch is registered with the timers engine
    (Saturday 02:00 UTC); enabled, the rule runs migrate_batch over the datastore's list when
    that timer fires (fired here through StackStorm's st2 webhook, as the timers engine
    dispatches it, rather than waiting for Saturday)."""
    st2 = st2_pack["st2"]
    rule = st2.api("GET", "/rules/ceph_migrate.scheduled_maintenance_batch")
    timer = rule["trigger"]["ref"]
    timers = {t["ref"]: t for t in st2.api("GET", "/timers?timer_type=core.st2.CronTimer")}
    assert timer in timers, "the rule's CronTimer is not registered"
    assert timers[timer]["parameters"] == {"timezone": "UTC", "day_of_week": "sat", "hour": 2,
                                           "minute": 0, "second": 0}
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    st2.run("key", "set", "ceph_migrate_maintenance_volumes", json.dumps([NO_VOLUME]))
    st2.run("rule", "enable", "ceph_migrate.scheduled_maintenance_batch")
    try:
        fired = st2.api("POST", "/webhooks/st2", {"trigger": timer, "payload": {
            "executed_at": "2026-12-05T02:00:00Z", "schedule": None}})
        assert fired is not None
        deadline = time.monotonic() + 120
        while True:
            runs = [e for e in st2.api("GET", "/ruleenforcements?rule_ref=ceph_migrate."
                                              "scheduled_maintenance_batch&limit=20")
                    if e["enforced_at"] >= since and e.get("execution_id")]
            if runs or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert runs, "the rule did not run migrate_batch"
        batch = st2.execution(runs[0]["execution_id"])
        assert batch["action"]["ref"] == "ceph_migrate.migrate_batch"
        assert batch["parameters"] == {"volumes": [NO_VOLUME], "concurrency": 2}
        done = st2.wait(batch["id"], lambda e: e["status"] in COMPLETED, 300)
        assert done["result"]["output"]["outcome"].startswith("0 of 1 volumes done")
    finally:
        st2.run("rule", "disable", "ceph_migrate.scheduled_maintenance_batch")
        st2.run("key", "delete", "ceph_migrate_maintenance_volumes", check=False)


# --------------------------------------------------------------------------- servers

def test_a_server_migrated_from_chat_with_its_window_then_rolled_back(
        st2_pack, settings, full_config, clouds, openstack_facts):
    """`migrate whole tenant tenant to tenant ephemeral=true translation='...'` typed in chat
    (its server's ephemeral disk carried; its router's external network translated, quoted as
    nested braces need), each gate answered by the account it names: the tenant's
    infrastructure (the tenant admin's gate), then its server in a wave of migrate_servers (an
    execution of its own, through its own gates: the tenant's run never pauses itself), all
    compared, the window by phase in the report and
    the chat reply. The counterpart runs at ct1 on the source's MAC with a floating IP, its
    root the copy of the stopped source's; the source is stopped and locked, its sync
    snapshots gone. `migrate server <id>` then finds it there and asks nothing;
    `rollback_server` puts the source back running and takes everything made at ct1."""
    st2 = st2_pack["st2"]
    tenant, admin = clouds["pa1-tenant"], clouds["pa1-admin"]
    ct1 = clouds["ct1-admin"]
    made = []           # what the test creates, undone in reverse order
    source_project = vm = None
    volumes_moved = []
    try:
        parts = addressed_server(tenant, admin, made, openstack_facts, "st2vm", "10.20.0.60",
                                 ephemeral=1)
        vm, port, public = parts["server"], parts["port"], parts["public"]
        source_project = vm.project_id
        root = "%s_disk" % vm.id
        dest_public = openstack_facts["clouds"]["ct1"]["network"]["public"]["id"]

        write_random(settings, SOURCE, "vms/%s.eph0" % root, 2, offset_mib=3)
        whole = st2.chat("migrate whole tenant tenant to tenant ephemeral=true translation='%s'"
                         % json.dumps({"external_networks": {public: dest_public}})
                         )["execution"]["id"]
        done = answer_gates(st2, whole, lambda inquiry: True)
        output = done["result"]["output"]
        assert done["status"] == "succeeded", json.dumps(output, indent=1)
        # (a detached volume another test left in the tenant crosses too: undone below)
        volumes_moved = [r["volume_id"] for r in output["volume_results"]]
        assert output["outcome"] == ("tenant migrated and compared clean: 1 server(s), %d "
                                     "detached volume(s)" % len(volumes_moved)), output
        # the infrastructure's gate first, the server's last (any volume's in between)
        gates = [(g["task"], gate_user(g)) for g in done["_gates"]]
        assert gates[:1] + gates[-3:] == [
            ("approve_import", "tenant-admin"), ("approve_copy", "ceph-admin"),
            ("approve_cutover", "tenant-admin"), ("approve_cleanup", "ceph-admin")], gates
        [result] = output["server_results"]
        assert (result["server_id"], result["status"]) == (vm.id, "succeeded"), result
        counterpart = ct1.compute.get_server(result["destination_server"]["server_id"])
        assert counterpart.status == "ACTIVE"
        twin_port = next(ct1.network.ports(device_id=counterpart.id))
        assert (twin_port.mac_address, twin_port.fixed_ips[0]["ip_address"]) == (
            port.mac_address, "10.20.0.60")
        assert [ip.port_id for ip in ct1.network.ips(port_id=twin_port.id)] == [twin_port.id]
        source = admin.compute.get_server(vm.id)
        assert (source.status, source.is_locked) == ("SHUTOFF", True)
        assert settings.rbd(SOURCE).run("snap", "ls", "vms/" + root) == []
        assert [s["name"] for s in settings.rbd(DESTINATION).run("snap", "ls", "%s/%s" % (
            full_config["pools"]["destination_glance_pool"], root))] == ["snap"]
        copy = "%s/%s@snap" % (full_config["pools"]["destination_glance_pool"], root)
        assert head_sha(settings, DESTINATION, copy, 64 << 20) == head_sha(
            settings, SOURCE, "vms/" + root, 64 << 20)
        # its ephemeral disk (ephemeral=true): the source's, in place of its blank one
        assert head_sha(settings, DESTINATION, "vms/%s_disk.eph0" % counterpart.id,
                        16 << 20) == head_sha(settings, SOURCE, "vms/%s.eph0" % root, 16 << 20)
        window = output["downtime"][vm.id]
        assert window["seconds"] > 0 and all(window[k] is not None and window[k] >= 0 for k in (
            "stop", "final_sync", "register", "create")), window
        assert "  server %s: down %s s (stop" % (vm.id, window["seconds"]) \
            in output["report"], output["report"]
        reply = st2.chat_reply(whole, 300)
        assert reply.startswith("Whole tenant tenant: succeeded; tenant migrated and compared "
                                "clean"), reply
        assert "  server %s: down %s s (stop" % (vm.id, window["seconds"]) in reply, reply

        # typed again for the server alone: it is there, released; nothing is asked
        again = st2.chat("migrate server %s" % vm.id)["execution"]["id"]
        rerun = answer_gates(st2, again, lambda inquiry: False)
        assert rerun["status"] == "succeeded" and rerun["_gates"] == [], rerun["_gates"]
        reply = st2.chat_reply(again, 300)
        assert "Server %s: succeeded; already migrated as %s" % (vm.id, counterpart.id) \
            in reply, reply

        undone = st2.run("run", "ceph_migrate.rollback_server", "server_id=" + vm.id)
        assert "status: succeeded" in undone.stdout, undone.stdout[-2000:]
        back = admin.compute.get_server(vm.id)
        assert (back.status, back.is_locked) == ("ACTIVE", False)
        assert ct1.compute.find_server(counterpart.id, ignore_missing=True) is None
        assert ct1.network.find_port(twin_port.id, ignore_missing=True) is None
    finally:
        for volume_id in volumes_moved:
            forget_migration(settings, full_config, clouds, volume_id)
        if vm is not None:
            st2.run("run", "ceph_migrate.rollback_server", "server_id=" + vm.id, check=False)
        if source_project:
            st2.run("run", "ceph_migrate.rollback_tenant",
                    "source_project_id=%s" % source_project, check=False)
        for undo in reversed(made):
            try:
                undo()
            except Exception:
                pass
