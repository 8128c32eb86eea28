"""Installed into the sandbox's OpenStack virtualenv as ML2 mechanism driver `ceph_migrate_sandbox`
(an entry point in a dist-info written beside it, see openstack_clouds/venv.py).

The sandbox runs no L2 agent (no Open vSwitch, no OVN): Neutron's own drivers then fail to bind a
port and Nova's server goes to ERROR. This driver binds every port, on any host, to the first
segment offered, as vif_type ovs with the port ACTIVE: the API and Nova see what they see on a
real cloud, and no packet moves.
"""
from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class NoAgentMechanismDriver(api.MechanismDriver):

    def initialize(self):
        pass

    @property
    def connectivity(self):
        return portbindings.CONNECTIVITY_L2     # ports without a fixed IP bind as well

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OVS,
                                {portbindings.CAP_PORT_FILTER: True,
                                 portbindings.OVS_HYBRID_PLUG: False},
                                status=constants.PORT_STATUS_ACTIVE)
            return

    def filter_hosts_with_segment_access(self, context, segments, candidate_hosts,
                                         agent_getter):
        return set(candidate_hosts)
