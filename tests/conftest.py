# st2_support first: it puts the StackStorm doubles (when st2 is absent) and actions/ on sys.path
from st2_support import make_action, make_sensor, pack_config  # noqa: F401
from ceph_env import ceph_config, settings  # noqa: F401,E402  (the real Ceph sandbox)
from openstack_env import clouds, full_config, openstack_facts  # noqa: F401,E402 (two clouds)
from st2_env import broker_proxies, st2_facts, st2_pack  # noqa: F401,E402 (real StackStorm)
