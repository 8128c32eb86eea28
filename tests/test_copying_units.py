"""A re-run right after a killed copy: the dead rbd cp's watch keeps the partial image busy
(EBUSY) until the OSDs time it out; the removal waits for that instead of failing."""
import pytest

from lib import copying
from lib.errors import RbdError


class FakeCli:
    def __init__(self, failures, code=16):
        self.failures, self.code, self.calls = failures, code, 0

    def run_text(self, *args):
        self.calls += 1
        if self.calls <= self.failures:
            raise RbdError(["rbd"] + list(args), self.code, "image has watchers - not removing")
        return ""


class Partial:
    def __init__(self, cli):
        self.cli, self.spec = cli, "pool/volume-x.ceph_migrate-partial"


def test_a_busy_partial_is_removed_once_the_dead_watch_expired():
    cli = FakeCli(failures=3)
    copying.remove_when_released(Partial(cli), timeout=10, poll=0)
    assert cli.calls == 4


def test_other_errors_and_a_watch_that_never_expires_still_fail():
    with pytest.raises(RbdError):
        copying.remove_when_released(Partial(FakeCli(failures=1, code=2)), timeout=10, poll=0)
    cli = FakeCli(failures=10 ** 6)
    with pytest.raises(RbdError):
        copying.remove_when_released(Partial(cli), timeout=0.05, poll=0.01)
    assert cli.calls > 1
