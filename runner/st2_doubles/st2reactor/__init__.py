"""Minimal stand-in for StackStorm's ``st2reactor`` (see ``runner/st2_doubles/__init__.py``)."""
