"""Minimal stand-in for StackStorm's ``st2common`` (see ``runner/st2_doubles/__init__.py``)."""
