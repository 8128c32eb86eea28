from st2common.runners.base_action import Action

from lib.action_support import reported
from lib.copying import create_snapshot
from lib.settings import Settings


class CreateSnapshot(Action):
    """Create (and protect) a user snapshot, e.g. the ``snap`` Glance's RBD location needs."""

    @reported
    def run(self, image, pool, cluster="destination", snapshot="snap", protect=True):
        settings = Settings.from_config(self.config)
        return create_snapshot(settings.image(cluster, pool, image), snapshot, protect)
