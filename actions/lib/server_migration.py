"""The server procedure's steps at the destination, each found again on a re-run through the
tenant's mapping (lib.tenant's one rule): first the server's ports, made before the cutover
with the source's MAC and addresses, so the window holds only what must wait for the stop."""
from typing import Any, Dict, List, Optional

from .errors import RefusedError
from .neutron import port_store
from .server_plan import destination_refs
from .servers import describe
from .settings import DESTINATION, Settings
from .tenant import reconcile, summary
from .tenant_infra import guarded, load_map, save_map
from .waiting import Reader, Writer

PORT_KEYS = ("name", "description", "tags", "network_id", "mac_address", "fixed_ips",
             "security_group_ids", "allowed_address_pairs", "is_port_security_enabled")


def prepare_ports(settings: Settings, server_id: str, read: Optional[Reader] = None,
                  write: Optional[Writer] = None, dry_run: bool = False) -> Dict[str, Any]:
    """The server's ports at the destination (in its tenant's destination project), each
    created, found again or said to conflict; the mapping keeps them for the rollback."""
    server = describe(settings, server_id)
    tmap = load_map(read, server["project_id"])
    refs, missing = destination_refs(server, tmap, None)
    missing = [m for m in missing if not m.startswith(("flavor", "external network"))]
    if missing or not refs["project_id"]:
        raise RefusedError("; ".join(missing) or "the server's project is not at the "
                           "destination: migrate the tenant's infrastructure first")
    store = guarded(port_store(settings.cloud(DESTINATION).connect(), refs["project_id"]),
                    "port")
    results = []
    for port in refs["ports"]:
        wanted = {k: port[k] for k in PORT_KEYS}
        wanted["allowed_address_pairs"] = sorted(
            ({"ip_address": p["ip_address"], "mac_address": p.get("mac_address")}
             for p in wanted["allowed_address_pairs"]), key=lambda p: p["ip_address"])
        wanted["security_group_ids"] = sorted(wanted["security_group_ids"])
        results.append(reconcile("port", port["source_id"], wanted, store, tmap,
                                 dry_run=dry_run, label=port["mac_address"]))
    if not dry_run:
        save_map(write, server["project_id"], tmap)
    ports: List[Dict[str, Any]] = [r.as_dict() for r in results]
    return {"changed": not dry_run and any(r.changed for r in results), "dry_run": dry_run,
            "summary": summary(results), "ports": ports,
            "project_id": refs["project_id"]}
