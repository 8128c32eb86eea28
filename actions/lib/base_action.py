"""The base class of the pack's actions: the pack config parsed into Settings once per run.

The one module of the core that imports StackStorm, and only the actions import it. The
settings are built on first use inside ``run``, not in ``__init__``: a bad config then fails
the step like any other error of the pack (``lib.action_support.reported`` turns it into a
readable failed result) instead of an action that cannot even be loaded."""
from typing import Optional

from st2common.runners.base_action import Action

from .gates import Approvals
from .settings import Settings


class PackAction(Action):
    _settings: Optional[Settings] = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_config(self.config)
        return self._settings

    @property
    def approvals(self) -> Approvals:
        """Who answers the gates; read without the rest of the config, so the gate actions
        work with only ``approvals`` configured."""
        if self._settings is not None:
            return self._settings.approvals
        return Approvals.from_config(self.config)
