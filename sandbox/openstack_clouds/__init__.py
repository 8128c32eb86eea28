"""The OpenStack sandbox (sandbox/openstack_sandbox.py), a module per part: layout (clouds,
files), venv (what they run on), processes, broker, ceph, keystone, glance, cinder, cloud (one
cloud brought up) and lifecycle (both: up, down, status)."""
