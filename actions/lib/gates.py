"""Who may answer an approval gate, beyond what StackStorm checks.

StackStorm's core.ask checks the users/roles of a gate against the StackStorm account that
answers; from chat that is always the chat bot's account, so anyone who may use the approve
alias would answer every gate. ``respond_gate`` therefore also checks the chat user (the
``api_user`` StackStorm records for an alias execution) against the gate's ``chat_users``, and
keeps whoever started a migration from approving its own cutover (the tenant admin's gate)
unless ``approvals.self_approval`` allows it."""
from typing import Any, Dict, Mapping, Optional

from .errors import RefusedError

CUTOVER_GATE = "tenant_admin"


def identity(context: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The person behind an execution: the chat user when it came from chat, else its
    StackStorm account."""
    context = context or {}
    return context.get("api_user") or context.get("user") or None


def check_answer(approvals: Mapping[str, Dict[str, Any]], self_approval: bool, route: str,
                 answering: Mapping[str, Any], asking: Mapping[str, Any],
                 approving: bool = True) -> Dict[str, Any]:
    """Refuse an answer to the gate ``route`` (``ceph_admin`` or ``tenant_admin``) from the
    execution context ``answering`` (respond_gate's own) to the gate whose execution context is
    ``asking`` (the core.ask's, which carries the migration's requester). A requester may
    always reject (stop) their own run. Returns who answered, for the record."""
    gate = approvals.get(route)
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
    if approving and route == CUTOVER_GATE and not self_approval and who and who == requester:
        raise RefusedError("%r started this migration and may not approve its cutover too "
                           "(approvals.self_approval is false): another tenant admin answers"
                           % who)
    return {"answered_by": who, "chat_user": chat_user or None, "requested_by": requester}
