"""Who may answer an approval gate, beyond what StackStorm checks.

StackStorm's core.ask checks the users/roles of a gate against the StackStorm account that
answers; from chat that is always the chat bot's account, so anyone who may use the approve
alias would answer every gate. ``respond_gate`` therefore also checks the chat user (the
``api_user`` StackStorm records for an alias execution) against the gate's ``chat_users``, and
keeps whoever started a migration from approving its own cutover (the tenant admin's gate)
unless ``approvals.self_approval`` allows it."""
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from .config_values import default, flag, names
from .errors import RefusedError

GATES = ("ceph_admin", "tenant_admin")
CUTOVER_GATE = "tenant_admin"


@dataclass(frozen=True)
class Approvals:
    """Who answers each gate: ``{gate: {"users": [...], "roles": [...], "chat_users": [...]}}``
    (empty users and roles mean anyone StackStorm lets respond, core.ask's own default; empty
    chat_users nobody from chat), and whether whoever started a migration may also approve
    its cutover."""

    gates: Dict[str, Dict[str, List[str]]]
    self_approval: bool

    @classmethod
    def from_config(cls, config: Optional[Mapping[str, Any]]) -> "Approvals":
        """Reads only ``approvals``: the gate actions work without the Ceph sections."""
        section = (config or {}).get("approvals") or {}

        def listed(gate: str, kind: str) -> List[str]:
            value = (section.get(gate) or {}).get(kind)
            return names(value, "approvals.%s.%s" % (gate, kind)) if value is not None \
                else default("approvals.gate." + kind)

        return cls(gates={gate: {kind: listed(gate, kind)
                                 for kind in ("users", "roles", "chat_users")}
                          for gate in GATES},
                   self_approval=flag(section.get("self_approval"), "approvals.self_approval",
                                      default("approvals.self_approval")))


def identity(context: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The person behind an execution: the chat user when it came from chat, else its
    StackStorm account."""
    context = context or {}
    return context.get("api_user") or context.get("user") or None


def check_answer(approvals: Approvals, route: str,
                 answering: Mapping[str, Any], asking: Mapping[str, Any],
                 approving: bool = True) -> Dict[str, Any]:
    """Refuse an answer to the gate ``route`` (``ceph_admin`` or ``tenant_admin``) from the
    execution context ``answering`` (respond_gate's own) to the gate whose execution context is
    ``asking`` (the core.ask's, which carries the migration's requester). A requester may
    always reject (stop) their own run. Returns who answered, for the record."""
    gate = approvals.gates.get(route)
    if gate is None:
        raise RefusedError("the inquiry is not a ceph_migrate gate (route %r)" % route)
    chat_user = answering.get("api_user")
    if chat_user:
        allowed = gate.get("chat_users") or []
        if chat_user not in allowed:
            raise RefusedError(
                "chat user %r may not answer the %s gate (approvals.%s.chat_users: %s)"
                % (chat_user, route, route, ", ".join(allowed) or "nobody, from chat"))
    who, requester = identity(answering), identity(asking)
    if approving and route == CUTOVER_GATE and not approvals.self_approval and who and \
            who == requester:
        raise RefusedError("%r started this migration and may not approve its cutover too "
                           "(approvals.self_approval is false): another tenant admin answers"
                           % who)
    return {"answered_by": who, "chat_user": chat_user or None, "requested_by": requester}
