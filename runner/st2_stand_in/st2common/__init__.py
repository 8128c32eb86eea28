"""Minimal stand-in for StackStorm's ``st2common``: the base class the pack's actions import,
so the local runner (and the tests) run them where StackStorm is not installed. ``runner.actions``
puts this directory on ``sys.path`` only when the real ``st2common`` is not importable."""
