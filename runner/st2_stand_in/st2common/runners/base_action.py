"""Stand-in for ``st2common.runners.base_action``: the base class of Python-runner actions.

Same constructor, attributes and abstract ``run`` as StackStorm 3.8/3.9, so an action that works
against this stand-in is written against the real interface.
"""
import abc

from st2common.runners.utils import PackConfigDict
from st2common.runners.utils import get_logger_for_python_runner_action

__all__ = ["Action"]


class Action(metaclass=abc.ABCMeta):
    """Base class of Python actions; st2 instantiates it once per execution."""

    description = None

    def __init__(self, config=None, action_service=None):
        wrapper = getattr(action_service, "_action_wrapper", None) if action_service else None
        log_level = getattr(wrapper, "_log_level", "debug") if wrapper else "debug"
        pack_name = getattr(wrapper, "_pack", "unknown") if wrapper else "unknown"

        self.action_service = action_service
        self.config = PackConfigDict(pack_name, config or {})
        self.logger = get_logger_for_python_runner_action(
            action_name=self.__class__.__name__, log_level=log_level
        )

    @abc.abstractmethod
    def run(self, **kwargs):
        """Do the work; the return value becomes the execution result."""
