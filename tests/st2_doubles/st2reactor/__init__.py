"""Minimal stand-in for StackStorm's ``st2reactor`` (see ``tests/st2_doubles/__init__.py``)."""
