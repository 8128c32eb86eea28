"""Progress of long rbd commands: parsing rbd's own output, rate and ETA, calm reporting."""
import os
import stat
import sys
import textwrap

import pytest

from lib.ceph_cli import CephCli, CephCluster
from lib.errors import RbdError
from lib.progress import Progress, describe

FAKE_RBD = textwrap.dedent("""\
    #!%s
    import sys, time
    for p in (0, 25, 50, 75, 100):
        sys.stderr.write("Image copy: %%d%%%% complete...\\r" %% p)
        sys.stderr.flush()
        time.sleep(0.01)
    sys.stderr.write("Image copy: 100%% complete...done.\\n")
    if "fail" in sys.argv:
        sys.stderr.write("rbd: copy failed: (28) No space left on device\\n")
        sys.exit(28)
    if "hang" in sys.argv:          # what rbd cp does when an OSD stops answering
        sys.stderr.write("Image copy: 100%% complete...\\r")
        sys.stderr.flush()
        time.sleep(60)
    """) % sys.executable


@pytest.fixture
def fake_rbd(tmp_path):
    path = tmp_path / "rbd"
    path.write_text(FAKE_RBD)
    os.chmod(str(path), os.stat(str(path)).st_mode | stat.S_IEXEC)
    return CephCli(CephCluster(name="cephpa1"), program=str(path))


def test_rbd_progress_lines_reach_the_callback(fake_rbd):
    seen = []
    fake_rbd.run_with_progress("cp", "a/b", "c/d", on_progress=seen.append)
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


def test_failure_keeps_the_real_error_not_the_progress(fake_rbd):
    with pytest.raises(RbdError) as caught:
        fake_rbd.run_with_progress("cp", "a/b", "c/d", "fail", on_progress=lambda f: None)
    assert caught.value.returncode == 28
    assert "No space left" in caught.value.stderr and "complete" not in caught.value.stderr


def test_a_copy_without_progress_is_stopped_with_the_clusters_health(fake_rbd):
    """The watchdog stops a command that shows no progress for stall_timeout seconds, long
    before its timeout; the error says so and what `ceph health` reports (here: no cluster)."""
    import time

    from lib.errors import RbdStalled
    fake_rbd.stall_timeout = 1
    started = time.monotonic()
    with pytest.raises(RbdStalled) as caught:
        fake_rbd.run_with_progress("cp", "a/b", "c/d", "hang", on_progress=lambda f: None,
                                   timeout=50)
    assert time.monotonic() - started < 50       # stopped by the watchdog, not the timeout
    assert "no progress for 1s" in str(caught.value)
    assert "the cluster reports: ceph health failed" in str(caught.value)
    fake_rbd.stall_timeout = 0                    # 0: never stopped for a stall
    fake_rbd.run_with_progress("cp", "a/b", "c/d", on_progress=lambda f: None)


def test_progress_reports_rate_eta_and_throttles():
    now = [0.0]
    reports = []
    progress = Progress("copy x", 1000 * 1000 * 1000, reports.append, interval=5,
                        clock=lambda: now[0])
    now[0] = 2.0
    progress.update(0.1)              # too early: not reported
    now[0] = 5.0
    progress.update(0.5)
    now[0] = 6.0
    progress.update(0.6)              # within the interval again
    now[0] = 10.0
    progress.update(1.0)              # the end is always reported
    assert [r["percent"] for r in reports] == [50.0, 100.0]
    assert reports[0]["mb_per_second"] == 100.0 and reports[0]["eta_seconds"] == 5
    assert describe(reports[0]) == "copy x: 50% at 100 MB/s, ETA 5 s"
    assert describe(reports[1]) == "copy x: 100% at 100 MB/s"


def test_no_reporter_no_work():
    Progress("x", 10, None).update(0.5)
