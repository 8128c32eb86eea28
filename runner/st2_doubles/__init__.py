"""Stand-ins for the parts of StackStorm a pack's code touches at run time.

StackStorm is not on PyPI, so the pack's actions and sensors cannot import the real
``st2common`` / ``st2reactor`` here. This directory is put on ``sys.path`` (by
``tests/st2_support.py``) ONLY when the real ``st2common`` is not importable, so a machine with
StackStorm installed tests against the real thing. ``st2_services`` and ``st2_schema`` are test
doubles and helpers, imported as ``st2_doubles.<module>``; they are deliberately named so they
cannot shadow a real distribution when this directory is on ``sys.path``.
"""
