"""Both procedures' OpenStack steps against two real clouds on the real Ceph pair, with real
bytes: the migrated volume's and image's content is proven identical to the source's."""
import pytest

from ceph_env import purge_image, run_action, run_unchecked
from lib.settings import DESTINATION, SOURCE
from runner.actions import ParameterError
from openstack_env import (cloud_fingerprint, create_source_volume, delete_quietly,
                           forget_migration, wait_gone)


def sha(settings, side, pool, image, size=None):
    return settings.rbd(side).export_sha256("%s/%s" % (pool, image), timeout=600)


def ok(run):
    assert run.ok, run.result
    return run.result


def unchanged(run):
    assert ok(run)["changed"] is False, run.result
    return run.result


@pytest.fixture
def tenant_project(openstack_facts):
    return openstack_facts["clouds"]["ct1"]["tenant_project_id"]


def test_procedure_1_data_volume(settings, full_config, clouds, tenant_project):
    pools = settings.pools
    # Cinder's create took a line break the destination's manage refuses: carried escaped
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=256,
                                  description="migrated by\nthe tests")
    assert volume.description == "migrated by\nthe tests"
    image = "volume-" + volume.id
    try:
        described = ok(run_action("describe_volume", full_config, volume_id=volume.id))
        assert described["name"] == volume.name and described["size_gib"] == 1
        assert described["status"] == "available" and described["encrypted"] is False
        assert described["project_name"] == "tenant" and described["volume_type"] == "ceph"
        assert described["project_domain"] == "Default"
        assert described["rbd_image"]["image"] == image and described["clone_of"] is None

        plan = ok(run_action("plan_volume_migration", full_config, volume_id=volume.id))
        assert plan["ok"] and {c["check"] for c in plan["checks"]} >= {
            "volume type is not encrypted", "destination quota has room",
            "destination Cinder pool is managed by a backend"}
        fields = {c["check"]: c["detail"] for c in plan["checks"]}
        assert "carried as escapes" in fields["destination accepts the volume's fields"]
        migration = plan["migration"]        # the plan's value, passed on to the manage
        assert migration["volume"] == plan["volume"] and migration["image"] == image
        assert (migration["procedure"], migration["mode"]) == ("data", "snapshot")
        assert migration["destination_project"]["id"] == tenant_project

        # the Ceph stage (tested in depth in test_ceph_stage)
        ok(run_action("enable_mirroring", full_config, image=image))
        ok(run_action("wait_for_sync", full_config, image=image, timeout_seconds=300))
        ok(run_action("mirror_snapshot", full_config, image=image))
        ok(run_action("wait_for_sync", full_config, image=image, timeout_seconds=300))
        ok(run_action("copy_replica", full_config, image=image))
        source_sum = ok(run_action("verify_copy", full_config, image=image))["sha256"]

        managed = ok(run_action("manage_volume", full_config, volume_id=volume.id,
                                migration=migration))
        assert managed["changed"] is True
        new_id = managed["volume_id"]
        dest = clouds["ct1-admin"].block_storage.get_volume(new_id)
        assert dest.status == "available" and dest.project_id == tenant_project
        assert (dest.name, dest.size, dest.volume_type, dest.description) == \
            (volume.name, volume.size, "ceph", "migrated by\\nthe tests")
        assert dest.metadata["app"] == "tests"
        assert dest.metadata["ceph_migrate_source_id"] == volume.id
        # the tenant owns it: their own token sees it
        assert clouds["ct1-tenant"].block_storage.get_volume(new_id).id == new_id
        # Cinder renamed the image; the content is the source's, byte for byte
        assert managed["rbd_image"] == "%s/volume-%s" % (pools.destination_cinder, new_id)
        assert not settings.image(DESTINATION, pools.destination_cinder, image).exists()
        assert sha(settings, DESTINATION, pools.destination_cinder, "volume-" + new_id)[0] == \
            source_sum
        # the managed copy is the tenant's volume now: never removed as the pack's copy
        expect_refused(run_action("remove_copy", full_config, image="volume-" + new_id,
                                  source_image=image), "renamed since")
        expect_refused(run_action("remove_image", full_config, image="volume-" + new_id,
                                  pool=pools.destination_cinder, cluster="destination"),
                       "source images only")
        assert settings.image(DESTINATION, pools.destination_cinder, "volume-" + new_id).exists()
        # every step again: nothing changes, no duplicate
        assert unchanged(run_action("manage_volume", full_config,
                                    volume_id=volume.id))["volume_id"] == new_id
        assert unchanged(run_action("enable_mirroring", full_config, image=image))
        # cleanup of the source side: allowed, the verification record followed the rename
        ok(run_action("disable_mirroring", full_config, image=image))
        info = ok(run_action("image_info", full_config, image=image))
        assert info["records"]["ceph_migrate.verified"]
        assert new_id in info["records"]["ceph_migrate.verified"]
    finally:
        forget_migration(settings, full_config, clouds, volume.id)


def test_procedure_2_boot_volume_through_glance(settings, full_config, clouds,
                                                tenant_project):
    pools = settings.pools
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=1024, bootable=True)
    image_id = created_id = None
    # an image of another project, public, with the upload's name and the volume's tag: the
    # tenant sees it, the pack never takes it for its upload
    forged = clouds["pa1-admin"].image.create_image(
        name=volume.name + "_img", disk_format="raw", container_format="bare",
        visibility="public", ceph_migrate_source_id=volume.id)
    try:
        plan = ok(run_action("plan_boot_volume_migration", full_config, volume_id=volume.id))
        assert plan["ok"]
        migration = plan["migration"]        # passed on to the steps; re-runs go without it
        assert (migration["procedure"], migration["mode"], migration["image"]) == \
            ("boot", "journal", None)
        assert migration["volume"]["id"] == volume.id
        assert migration["destination_project"]["id"] == tenant_project
        uploaded = ok(run_action("upload_volume_to_image", full_config, volume_id=volume.id,
                                 migration=migration))
        image_id = uploaded["image_id"]
        assert uploaded["changed"] and image_id != forged.id
        assert uploaded["status"] == "active" and uploaded["disk_format"] == "raw"
        assert uploaded["rbd_location"]["pool"] == pools.mirrored_glance
        assert uploaded["rbd_location"]["fsid"] == settings.fsid(SOURCE)
        assert uploaded["rbd_location"]["image"] == image_id
        assert unchanged(run_action("upload_volume_to_image", full_config,
                                    volume_id=volume.id))["image_id"] == image_id
        source_sum = sha(settings, SOURCE, pools.mirrored_cinder, "volume-" + volume.id)[0]
        assert sha(settings, SOURCE, pools.mirrored_glance, image_id)[0] == source_sum

        glance = dict(image=image_id, pool=pools.mirrored_glance)
        ok(run_action("enable_mirroring", full_config, mode="journal", **glance))
        ok(run_action("wait_for_sync", full_config, timeout_seconds=300, **glance))
        ok(run_action("copy_replica", full_config, destination_pool=pools.destination_glance,
                      **glance))
        ok(run_action("create_snapshot", full_config, image=image_id,
                      pool=pools.destination_glance))
        ok(run_action("verify_copy", full_config, destination_pool=pools.destination_glance,
                      **glance))

        registered = ok(run_action("register_image", full_config, image_id=image_id,
                                   migration=migration))
        assert registered["changed"] and registered["status"] == "active"
        assert registered["location"] == "rbd://%s/%s/%s/snap" % (
            settings.fsid(DESTINATION), pools.destination_glance, image_id)
        assert registered["owner"] == tenant_project
        assert registered["disk_format"] == "raw"
        dest_image = clouds["ct1-admin"].image.get_image(registered["image_id"])
        stores = (dest_image.properties or {}).get("stores") or ""
        assert full_config["destination_glance_store"] in stores.split(","), dest_image
        assert unchanged(run_action("register_image", full_config,
                                    image_id=image_id))["image_id"] == registered["image_id"]
        # the copy is the registered image's data now: Glance's to delete, not the pack's
        expect_refused(run_action("remove_copy", full_config, image=image_id,
                                  pool=pools.destination_glance,
                                  source_pool=pools.mirrored_glance), "data of Glance image")

        created = ok(run_action("create_volume_from_image", full_config,
                                image_id=registered["image_id"], destination_project="tenant",
                                name=volume.name, size_gib=1, source_volume_id=volume.id,
                                migration=migration))
        created_id = created["volume_id"]
        dest = clouds["ct1-tenant"].block_storage.get_volume(created_id)
        assert dest.status == "available" and dest.is_bootable
        clone = settings.rbd(DESTINATION).run("info", "%s/volume-%s" % (
            pools.destination_cinder, created_id))
        assert clone["parent"]["pool"] == pools.destination_glance      # copy-on-write
        assert sha(settings, DESTINATION, pools.destination_cinder,
                   "volume-" + created_id)[0] == source_sum
        assert unchanged(run_action("create_volume_from_image", full_config,
                                    image_id=registered["image_id"],
                                    destination_project="tenant", name=volume.name,
                                    size_gib=1, source_volume_id=volume.id))
        ok(run_action("disable_mirroring", full_config, **glance))
        ok(run_action("restore_features", full_config, **glance))
    finally:
        if created_id:
            delete_quietly(clouds["ct1-admin"], "volume", created_id)
            wait_gone(clouds["ct1-admin"], created_id)
        if image_id:
            run_action("rollback_destination", full_config, source_id=image_id,
                       destination_project="tenant")
            run_action("disable_mirroring", full_config, image=image_id,
                       pool=pools.mirrored_glance, discard_replica=True)
            delete_quietly(clouds["pa1-admin"], "image", image_id)
        delete_quietly(clouds["pa1-admin"], "image", forged.id)
        delete_quietly(clouds["pa1-admin"], "volume", volume.id)


def test_rollback_leaves_the_source_alone(settings, full_config, clouds, tenant_project):
    pools = settings.pools
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=16)
    image = "volume-" + volume.id
    # a tenant's own volume at the destination carrying the tag the pack writes: a hint only,
    # never taken for the migrated volume, never rolled back
    forged = clouds["ct1-tenant"].block_storage.create_volume(
        name="forged", size=1, metadata={"ceph_migrate_source_id": volume.id})
    try:
        clouds["ct1-tenant"].block_storage.wait_for_status(forged, "available", interval=1,
                                                           wait=120)
        for step in ("enable_mirroring", "wait_for_sync", "copy_replica", "verify_copy"):
            ok(run_action(step, full_config, image=image))
        plan = ok(run_action("plan_volume_migration", full_config, volume_id=volume.id))
        assert plan.get("already_migrated") is None, plan
        managed = ok(run_action("manage_volume", full_config, volume_id=volume.id))
        assert managed["changed"] and managed["volume_id"] != forged.id
        rolled = ok(run_action("rollback_destination", full_config, source_id=volume.id,
                               destination_project="tenant", delete_data=True))
        assert rolled["undone"] == ["deleted volume %s" % managed["volume_id"]], rolled
        assert clouds["ct1-admin"].block_storage.get_volume(forged.id).status == "available"
        assert unchanged(run_action("rollback_destination", full_config, source_id=volume.id,
                                    destination_project="tenant", delete_data=True))
        # the same again, keeping the data: a manage, then an unmanage
        ok(run_action("copy_replica", full_config, image=image))
        ok(run_action("verify_copy", full_config, image=image))
        managed = ok(run_action("manage_volume", full_config, volume_id=volume.id))
        before = sha(settings, SOURCE, pools.mirrored_cinder, image)
        rolled = ok(run_action("rollback_destination", full_config, source_id=volume.id,
                               destination_project="tenant"))
        assert rolled["changed"] and "unmanaged" in rolled["undone"][0]
        wait_gone(clouds["ct1-admin"], managed["volume_id"])
        assert clouds["ct1-admin"].block_storage.get_volume(forged.id).status == "available"
        # unmanage keeps the data; the source is untouched
        assert settings.image(DESTINATION, pools.destination_cinder,
                              "volume-" + managed["volume_id"]).exists()
        assert sha(settings, SOURCE, pools.mirrored_cinder, image) == before
        assert clouds["pa1-admin"].block_storage.get_volume(volume.id).status == "available"
        assert unchanged(run_action("rollback_destination", full_config, source_id=volume.id,
                                    destination_project="tenant"))
        purge_image(settings, DESTINATION, pools.destination_cinder,
                    "volume-" + managed["volume_id"])
    finally:
        run_action("disable_mirroring", full_config, image=image, discard_replica=True)
        delete_quietly(clouds["pa1-admin"], "volume", volume.id)
        delete_quietly(clouds["ct1-admin"], "volume", forged.id)


def test_the_destination_project_is_found_in_the_source_projects_domain_only(
        settings, full_config, clouds, tenant_project):
    """Another domain at the destination holds a project of the same name: the default (the
    source project's name) still lands in the domain of the same name; the bare name given
    by hand is ambiguous and refused; the id is taken."""
    admin = clouds["ct1-admin"]
    volume = create_source_volume(clouds, settings, fill_mib=0)
    domain = admin.identity.create_domain(name="elsewhere-%s" % volume.id[:8])
    twin = admin.identity.create_project(name="tenant", domain_id=domain.id)
    try:
        plan = ok(run_action("plan_volume_migration", full_config, volume_id=volume.id))
        assert plan["destination_project"]["id"] == tenant_project
        assert plan["destination_project"]["domain"] == "Default"
        checks = failed_checks(run_action("plan_volume_migration", full_config,
                                          volume_id=volume.id, destination_project="tenant"))
        assert "2 projects are named 'tenant'" in checks["destination project exists"]
        plan = ok(run_action("plan_volume_migration", full_config, volume_id=volume.id,
                             destination_project=twin.id))
        assert plan["destination_project"]["id"] == twin.id
    finally:
        admin.identity.delete_project(twin.id, ignore_missing=True)
        admin.identity.update_domain(domain.id, is_enabled=False)
        admin.identity.delete_domain(domain.id, ignore_missing=True)
        delete_quietly(clouds["pa1-admin"], "volume", volume.id)


def expect_refused(run, words):
    assert run.ok is False, run.result
    text = run.result.get("error") or str(run.result.get("checks"))
    assert words in text, run.result
    return run.result


def failed_checks(run):
    assert run.ok is False, run.result
    return {c["check"]: c["detail"] for c in run.result["checks"] if not c["ok"]}


def test_refusals_change_nothing(settings, full_config, clouds, openstack_facts,
                                 tenant_project):
    from ceph_env import fingerprint
    tenant = clouds["pa1-tenant"]
    dest_tenant = clouds["ct1-tenant"]
    plain = create_source_volume(clouds, settings, fill_mib=0)
    made = [("pa1-admin", plain.id)]
    attached = None
    try:
        # a destination volume with the same name already exists
        twin = dest_tenant.block_storage.create_volume(name=plain.name, size=1)
        made.append(("ct1-admin", twin.id))
        dest_tenant.block_storage.wait_for_status(twin, "available", interval=1, wait=120)
        # an attached (in-use) volume
        attached = create_source_volume(clouds, settings, fill_mib=0)
        made.append(("pa1-admin", attached.id))
        attachment = clouds["pa1-admin"].block_storage.create_attachment(
            attached.id, connector={"host": "compute-1", "ip": "127.0.0.1", "platform": "x86_64",
                                    "os_type": "linux", "multipath": False,
                                    "initiator": "iqn.test"},
            instance="11111111-2222-3333-4444-555555555555")
        clouds["pa1-admin"].block_storage.complete_attachment(attachment)
        tenant.block_storage.wait_for_status(attached, "in-use", interval=1, wait=60)

        before = (cloud_fingerprint(clouds), fingerprint(settings))
        checks = failed_checks(run_action("plan_volume_migration", full_config,
                                          volume_id=plain.id))
        assert list(checks) == ["destination name is free"], checks
        checks = failed_checks(run_action("plan_volume_migration", full_config,
                                          volume_id=attached.id))
        assert "in use" in checks["volume state allows a migration"]
        assert ok(run_action("plan_volume_migration", full_config, volume_id=attached.id,
                             allow_in_use=True))["ok"]
        expect_refused(run_action("upload_volume_to_image", full_config,
                                  volume_id=attached.id), "in use")
        bad_pool = dict(full_config, pools=dict(full_config["pools"],
                                                destination_cinder_pool="nopool"))
        checks = failed_checks(run_action("plan_volume_migration", bad_pool,
                                          volume_id=attached.id, allow_in_use=True))
        assert "nopool" in checks["destination Cinder pool is managed by a backend"]
        expect_refused(run_action("manage_volume", full_config, volume_id=attached.id),
                       "does not exist: copy the replica first")
        quota = clouds["ct1-admin"].block_storage.get_quota_set(tenant_project, usage=True)
        full = quota.usage["gigabytes"]            # no room left for one more GiB
        clouds["ct1-admin"].block_storage.update_quota_set(quota, gigabytes=full)
        try:
            checks = failed_checks(run_action("plan_volume_migration", full_config,
                                              volume_id=attached.id, allow_in_use=True))
            assert "gigabytes" in checks["destination quota has room"], checks
        finally:
            clouds["ct1-admin"].block_storage.update_quota_set(quota, gigabytes=-1)
        # a volume a tenant made at the destination by hand: no removal step touches its image
        twin_image = "volume-" + twin.id
        expect_refused(run_action("remove_image", full_config, image=twin_image,
                                  pool=settings.pools.destination_cinder, cluster="destination"),
                       "source images only")
        expect_refused(run_action("remove_copy", full_config, image=twin_image),
                       "not a copy made by ceph_migrate")
        expect_refused(run_action("describe_volume", full_config,
                                  volume_id="0b0f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d10"), "not found")
        with pytest.raises(ParameterError, match="volume_id: 'x;reboot' does not match"):
            run_action("describe_volume", full_config, volume_id="x;reboot")   # StackStorm
        expect_refused(run_unchecked("describe_volume", full_config, volume_id="x;reboot"),
                       "not a volume id")                                   # and the pack
        if openstack_facts["clouds"]["pa1"]["cinder"].get("encryption"):
            secret = create_source_volume(clouds, settings, fill_mib=0,
                                          volume_type="encrypted")
            made.append(("pa1-admin", secret.id))
            before = (cloud_fingerprint(clouds), fingerprint(settings))
            checks = failed_checks(run_action("plan_volume_migration", full_config,
                                              volume_id=secret.id))
            assert "encrypted" in checks["volume type is not encrypted"]
            expect_refused(run_action("manage_volume", full_config, volume_id=secret.id),
                           "encrypted")
        assert (cloud_fingerprint(clouds), fingerprint(settings)) == before
    finally:
        if attached is not None:   # no Nova here to hear of a detach: reset the state instead
            clouds["pa1-admin"].block_storage.reset_volume_status(
                attached.id, status="available", attach_status="detached",
                migration_status=None)
        for cloud, volume_id in made:
            delete_quietly(clouds[cloud], "volume", volume_id)
