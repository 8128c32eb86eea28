"""Stand-in for ``st2common.runners.utils``: the config dict and logger the Action base uses."""
import logging

__all__ = ["PackConfigDict", "get_logger_for_python_runner_action"]

_CONFIG_MISSING_ITEM = (
    'Config for pack "%s" is missing key "%s". Make sure that the config file exists on disk '
    '(%s) and contains that key. Also make sure you run "st2ctl reload --register-configs" '
    "when you add a config and after every change you make to the config."
)
_LOGGERS = {}


class PackConfigDict(dict):
    """A pack config whose missing keys raise ValueError, as st2's does.

    Real actions see ValueError (not KeyError) for a key absent from the operator's config, so
    code that catches KeyError around ``self.config[...]`` is wrong in production; the stand-in
    keeps that visible in tests.
    """

    def __init__(self, pack_name, *args):
        super().__init__(*args)
        self._pack_name = pack_name

    def __getitem__(self, key):
        try:
            return super().__getitem__(key)
        except KeyError:
            path = "/opt/stackstorm/configs/%s.yaml" % self._pack_name
            raise ValueError(_CONFIG_MISSING_ITEM % (self._pack_name, key, path)) from None


def get_logger_for_python_runner_action(action_name, log_level="debug"):
    """Return the stderr logger st2 gives an action (``actions.python.<ClassName>``)."""
    name = "actions.python.%s" % action_name
    logger = _LOGGERS.get(name)
    if logger is None:
        level = getattr(logging, str(log_level).upper(), logging.DEBUG)
        logger = logging.getLogger(name)
        handler = logging.StreamHandler()
        handler.setLevel(level)
        handler.setFormatter(logging.Formatter("%(name)-12s: %(levelname)-8s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(level)
        _LOGGERS[name] = logger
    return logger
