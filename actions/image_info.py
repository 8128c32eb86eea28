from lib.action_support import reported
from lib.base_action import PackAction
from lib.rbd_image import META_PREFIX, facts


class ImageInfo(PackAction):
    """Features, mirroring state, snapshots, watchers and the pack's records of one image."""

    @reported
    def run(self, image, cluster="source", pool=None):
        settings = self.settings
        rbd_image = settings.image(cluster, pool or settings.pools.mirrored_cinder, image)
        result = facts(rbd_image.info())
        result.update(
            cluster=rbd_image.cli.cluster.name, pool=rbd_image.pool,
            watchers=len(rbd_image.watchers()),
            records={k: v for k, v in rbd_image.metadata().items() if k.startswith(META_PREFIX)})
        return result
