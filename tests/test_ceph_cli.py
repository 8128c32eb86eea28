"""Command construction and error mapping of the one rbd runner (no cluster needed)."""
import glob
import os
import subprocess
import tempfile

import pytest

from lib.ceph_cli import CephCli, CephCluster
from lib.errors import ConfigError, InvalidName, RbdError, RbdNotFound, RbdTimeout

SECRET = "AQAAAAAAAAAAABAAZmFrZWZha2VmYWtlZmFrZQ=="  # a cephx key's shape, not a real one


class FakeRunner:
    def __init__(self, returncode=0, stdout="", stderr="", raise_timeout=False):
        self.calls = []
        self.result = (returncode, stdout, stderr)
        self.raise_timeout = raise_timeout

    def __call__(self, argv, **kwargs):
        self.calls.append((argv, kwargs))
        if self.raise_timeout:
            raise subprocess.TimeoutExpired(argv, kwargs["timeout"])
        code, out, err = self.result
        return subprocess.CompletedProcess(argv, code, out, err)


def cluster(**kw):
    args = dict(name="cephpa1", client_id="ceph-migrate", conf="/etc/ceph/cephpa1.conf",
                keyring="/etc/ceph/cephpa1.client.ceph-migrate.keyring", role="destination")
    args.update(kw)
    return CephCluster(**args)


def test_argv_is_a_list_with_connection_options_and_json():
    runner = FakeRunner(stdout='{"size": 1}')
    cli = CephCli(cluster(), timeout=7, runner=runner)
    assert cli.run("info", "oscinder/volume-1") == {"size": 1}
    argv, kwargs = runner.calls[0]
    assert argv == ["rbd", "--cluster", "cephpa1", "--id", "ceph-migrate",
                    "--conf", "/etc/ceph/cephpa1.conf",
                    "--keyring", "/etc/ceph/cephpa1.client.ceph-migrate.keyring",
                    "info", "oscinder/volume-1", "--format", "json"]
    assert kwargs["timeout"] == 7 and "shell" not in kwargs
    assert kwargs["stdin"] == subprocess.DEVNULL


def test_text_commands_have_no_format_option_and_timeout_override():
    runner = FakeRunner(stdout="Snapshot ID: 7\n")
    out = CephCli(cluster(), runner=runner).run_text("mirror", "image", "snapshot", "p/i",
                                                     timeout=99)
    assert out.startswith("Snapshot ID")
    argv, kwargs = runner.calls[0]
    assert "--format" not in argv and kwargs["timeout"] == 99


def test_empty_json_output_is_none():
    assert CephCli(cluster(), runner=FakeRunner(stdout="\n")).run("image-meta", "list", "p/i") \
        is None


def test_enoent_becomes_not_found_with_rbd_stderr():
    stderr = ("2026-11-22T05:10:02 7f -1 librbd::image::OpenRequest: failed\n"
              "rbd: error opening image nope: (2) No such file or directory\n")
    cli = CephCli(cluster(), runner=FakeRunner(returncode=2, stderr=stderr))
    with pytest.raises(RbdNotFound) as caught:
        cli.run("info", "oscinder/nope")
    assert "No such file or directory" in caught.value.stderr
    assert caught.value.argv[:3] == ["rbd", "--cluster", "cephpa1"]


def test_other_failures_keep_exit_code_and_stderr():
    cli = CephCli(cluster(), runner=FakeRunner(returncode=22, stderr="rbd: invalid mode\n"))
    with pytest.raises(RbdError) as caught:
        cli.run_text("mirror", "image", "enable", "p/i", "journal")
    assert caught.value.returncode == 22 and not isinstance(caught.value, RbdNotFound)
    assert "invalid mode" in str(caught.value)


def test_timeout_is_typed():
    cli = CephCli(cluster(), timeout=3, runner=FakeRunner(raise_timeout=True))
    with pytest.raises(RbdTimeout, match="3s"):
        cli.run("info", "p/i")


def test_non_json_output_is_an_error():
    with pytest.raises(RbdError, match="not JSON"):
        CephCli(cluster(), runner=FakeRunner(stdout="oops")).run("info", "p/i")


def test_missing_program_is_explained():
    cli = CephCli(cluster(), program="rbd-definitely-not-installed")
    with pytest.raises(RbdError, match="ceph-common"):
        cli.run("info", "p/i")


def test_key_goes_to_a_keyring_in_memory_never_to_argv_files_logs_or_errors():
    runner = FakeRunner(returncode=1, stderr="auth: error setting modifier for [client.x] "
                                             "type=key val=%s: Malformed input\n" % SECRET)
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "*")))
    cli = CephCli(cluster(keyring=None, key=SECRET), runner=runner)
    with pytest.raises(RbdError) as caught:
        cli.run("info", "p/i")
    argv, kwargs = runner.calls[0]
    keyring = argv[argv.index("--keyring") + 1]
    fd = int(keyring.rsplit("/", 1)[1])
    assert keyring == "/proc/self/fd/%d" % fd and kwargs["pass_fds"] == (fd,)
    assert SECRET in open("/proc/self/fd/%d" % fd).read()          # what rbd reads
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "*"))) == before   # no file
    assert SECRET not in " ".join(argv)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value.argv)
    assert SECRET not in caught.value.stderr and "val=<hidden>" in caught.value.stderr
    assert SECRET not in repr(cli.cluster)


@pytest.mark.parametrize("bad", [SECRET[:-3] + "==", SECRET.replace("A", "A ", 1), SECRET + "x",
                                 "not a key at all"])
def test_a_malformed_key_is_refused_before_use_without_a_character_of_it(bad):
    with pytest.raises(ConfigError, match="cephx key of the destination cluster is malformed") \
            as caught:
        cluster(keyring=None, key=bad)
    assert bad[:8] not in str(caught.value)
    assert cluster(keyring=None, key=" %s\n" % SECRET).key == SECRET     # outer blanks only


def test_errors_show_the_cluster_not_the_keyring_path():
    runner = FakeRunner(returncode=1, stderr="boom")
    with pytest.raises(RbdError) as caught:
        CephCli(cluster(), runner=runner).run("info", "p/i")
    assert "keyring" not in str(caught.value)


def test_cluster_settings_are_validated():
    with pytest.raises(InvalidName):
        cluster(name="ceph;rm")
    with pytest.raises(InvalidName):
        cluster(client_id="client.admin")
    with pytest.raises(InvalidName):
        cluster(conf="relative.conf")
    with pytest.raises(ConfigError):
        cluster(keyring=None, key="bad\nkey")
