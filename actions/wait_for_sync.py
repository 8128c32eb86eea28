from lib.action_support import reported
from lib.base_action import PackAction
from lib.settings import DESTINATION, SOURCE
from lib.sync_check import mirrored_mode, wait_for_sync
from lib.waiting import Nudge, datastore_reader, synced_key


class WaitForSync(PackAction):
    """Wait (bounded) until the replica is in sync; fails on timeout so workflows retry."""

    @reported
    def run(self, image, pool=None, timeout_seconds=None):
        settings = self.settings
        pool = pool or settings.pools.mirrored_cinder
        source = settings.image(SOURCE, pool, image)
        # the mirror sensor writes this key when it sees the replica in sync: check at once
        nudge = Nudge(datastore_reader(self.action_service), synced_key(pool, image))
        result = wait_for_sync(
            mirrored_mode(source), source, settings.image(DESTINATION, pool, image),
            timeout=timeout_seconds or settings.wait_timeout,
            poll_interval=settings.poll_interval, sleep=nudge.sleep,
            on_poll=lambda state: self._report(image, state))
        return (result["in_sync"], result)

    def _report(self, image, state):
        """Log a poll only when it says something new (a quiet log in chat and in the UI)."""
        line = "%s: %s%s" % (image, state.detail, (" (%.1f%%)" % state.percent)
                             if state.percent is not None else "")
        if line != getattr(self, "_last_line", None):
            self._last_line = line
            self.logger.info("%s", line)
