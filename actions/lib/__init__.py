"""ceph_migrate core: plain Python, no StackStorm imports.

Actions import it as ``lib.<module>`` (StackStorm puts ``actions/`` on the action's sys.path);
modules inside use relative imports so the package is never loaded twice under two names.
"""
