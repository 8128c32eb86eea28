from lib.action_support import reported
from lib.base_action import PackAction
from lib.in_place import release_in_place
from lib.migration import Migration


class ReleaseInPlace(PackAction):
    """Placement promote, the cleanup: mirroring off on both sides; the source kept."""

    @reported
    def run(self, migration, destination_image=None):
        settings = self.settings
        return release_in_place(settings, Migration.from_dict(migration), destination_image)
