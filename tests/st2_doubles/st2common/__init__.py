"""Minimal stand-in for StackStorm's ``st2common`` (see ``tests/st2_doubles/__init__.py``)."""
