import pytest

from lib import names
from lib.errors import InvalidName

BAD_NAMES = ["", "a b", "../etc", "a..b", "-rf", "--cluster", "a/b", "a@b", "a;rm -rf /",
             "$(id)", "`id`", "a|b", "a&b", "a>b", "name\n", "tab\there", "é", "*", ".hidden",
             "x" * 201, None, 5]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_image_names_refused(bad):
    with pytest.raises(InvalidName):
        names.image_name(bad)


@pytest.mark.parametrize("good", ["volume-0b0f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d10",
                                  "0b0f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d10", "cinder-ceph-pa1-cl1",
                                  "glance_ct1.cl1", "A1"])
def test_ordinary_names_pass(good):
    assert names.image_name(good) == good
    assert names.pool_name(good) == good


def test_pool_and_snapshot_names_use_the_same_rules():
    for check in (names.pool_name, names.snapshot_name):
        for bad in ("a b", "..", "-x", "a/b", "a@b"):
            with pytest.raises(InvalidName):
                check(bad)


def test_image_spec_validates_every_part():
    assert names.image_spec("oscinder", "volume-1", "snap") == "oscinder/volume-1@snap"
    with pytest.raises(InvalidName):
        names.image_spec("oscinder", "volume-1", "snap;reboot")
    with pytest.raises(InvalidName):
        names.image_spec("os cinder", "volume-1")


def test_volume_ids_are_canonical_uuids():
    vid = "0b0f2a5e-8c3e-4d47-9f8e-3f1c2b7a9d10"
    assert names.volume_id(vid) == vid
    assert names.volume_id(vid.upper()) == vid        # pasted upper-case ids are normalised
    for bad in ("0b0f2a5e8c3e4d479f8e3f1c2b7a9d10", "{%s}" % vid, "urn:uuid:" + vid,
                "volume-" + vid, vid + "; ls", "", None):
        with pytest.raises(InvalidName):
            names.volume_id(bad)


def test_cluster_and_client_names():
    assert names.cluster_name("cephpa1") == "cephpa1"
    for bad in ("ceph.pa1", "-c", "a b"):
        with pytest.raises(InvalidName):
            names.cluster_name(bad)
    assert names.client_id("ceph-migrate") == "ceph-migrate"
    with pytest.raises(InvalidName, match="prefix"):
        names.client_id("client.admin")


def test_paths_features_and_modes():
    assert names.file_path("conf", "/etc/ceph/ceph.conf") == "/etc/ceph/ceph.conf"
    for bad in ("etc/ceph.conf", "/etc/ceph\n.conf", ""):
        with pytest.raises(InvalidName):
            names.file_path("conf", bad)
    assert names.image_feature("journaling") == "journaling"
    with pytest.raises(InvalidName):
        names.image_feature("layering,journaling")
    assert names.mirror_mode("journal") == "journal"
    with pytest.raises(InvalidName):
        names.mirror_mode("pool")
