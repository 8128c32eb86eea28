from lib.action_support import reported
from lib.base_action import PackAction
from lib.copying import create_snapshot


class CreateSnapshot(PackAction):
    """Create (and protect) a user snapshot, e.g. the ``snap`` Glance's RBD location needs."""

    @reported
    def run(self, image, pool, cluster="destination", snapshot="snap", protect=True):
        settings = self.settings
        return create_snapshot(settings.image(cluster, pool, image), snapshot, protect)
