"""Test doubles for the parts of StackStorm a pack's code touches at run time.

StackStorm is not on PyPI, so the pack's sensors cannot import the real ``st2reactor`` here.
This directory is put on ``sys.path`` (by ``tests/st2_support.py``) ONLY when the real
``st2common`` is not importable, so a machine with StackStorm tests against the real thing; the
``st2common`` stand-in the actions import is the local runner's (``runner/st2_stand_in``).
``st2_services``, ``st2_metadata`` and ``st2_load_check`` are test doubles and helpers, imported
as ``st2_doubles.<module>``; they are deliberately named so they cannot shadow a real
distribution when this directory is on ``sys.path``.
"""
