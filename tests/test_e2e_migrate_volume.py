"""migrate_volume end to end: the real workflow through orquesta's conductor, the real actions,
the two real clouds on the real Ceph pair."""
from ceph_env import fingerprint
from lib.settings import DESTINATION, SOURCE
from openstack_env import (cloud_fingerprint, create_source_volume, delete_quietly,
                           forget_migration)
from runner.local import LocalRunner


def approve_all(gate, params):
    return {"approved": True}


def test_migrate_volume_with_every_gate_approved(settings, full_config, clouds,
                                                 openstack_facts):
    pools = settings.pools
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=256)
    image = "volume-" + volume.id
    asked = []
    runner = LocalRunner(full_config, delay_scale=0.2,
                         answer=lambda gate, params: asked.append(gate) or {"approved": True})
    try:
        source_sum = settings.rbd(SOURCE).export_sha256("%s/%s" % (pools.mirrored_cinder,
                                                                   image))[0]
        result = runner.run("ceph_migrate.migrate_volume", volume_id=volume.id)
        assert result.status == "succeeded", (result.errors, result.output)
        assert asked == ["approve_mirroring", "approve_cutover", "approve_cleanup"]
        output = result.output
        assert output["outcome"] == "migrated, verified and cleaned up; the source image is kept"
        assert output["verified"]["sha256"] == source_sum
        new_id = output["volume"]["volume_id"]
        dest = clouds["ct1-tenant"].block_storage.get_volume(new_id)
        tenant = openstack_facts["clouds"]["ct1"]["tenant_project_id"]
        assert (dest.status, dest.project_id, dest.name) == ("available", tenant, volume.name)
        copy = settings.rbd(DESTINATION).export_sha256("%s/volume-%s" % (
            pools.destination_cinder, new_id))[0]
        assert copy == source_sum
        source = settings.rbd(SOURCE).run("info", "%s/%s" % (pools.mirrored_cinder, image))
        assert "mirroring" not in source or source["mirroring"]["state"] == "disabled"
    finally:
        forget_migration(settings, full_config, clouds, volume.id)


def test_dry_run_and_a_rejected_gate_change_nothing(settings, full_config, clouds):
    volume = create_source_volume(clouds, settings, size_gib=1, fill_mib=8)
    try:
        before = (cloud_fingerprint(clouds), fingerprint(settings))
        dry = LocalRunner(full_config, answer=approve_all).run(
            "ceph_migrate.migrate_volume", volume_id=volume.id, dry_run=True)
        assert dry.status == "succeeded" and dry.output["plan"]["ok"]
        assert dry.output["outcome"] == "dry run, nothing was changed"
        rejected = LocalRunner(full_config, answer=lambda g, p: {"approved": False}).run(
            "ceph_migrate.migrate_volume", volume_id=volume.id)
        assert rejected.status == "failed"
        assert "rejected by the Ceph admin" in rejected.output["outcome"]
        assert (cloud_fingerprint(clouds), fingerprint(settings)) == before
    finally:
        delete_quietly(clouds["pa1-admin"], "volume", volume.id)
