import os

from st2common.runners.base_action import Action

from lib.batch import ClientExecutions, run_round, SERVERS, VOLUMES


class RunBatch(Action):
    """One bounded round of a batch: start the next volumes' migrate_batch_item executions
    (or servers' migrate_server), at most ``concurrency`` running, watch them, report;
    migrate_batch (migrate_servers) runs rounds until done."""

    def run(self, batch_id, concurrency, round_seconds, volumes=None, servers=None,
            procedure="auto", mode=None, destination_project=None, allow_in_use=False,
            dry_run=False, keep_mirroring=False, sync_retries=20, method=None, placement=None,
            max_rounds=None, root_target=None, ephemeral=None):
        if bool(volumes) == bool(servers):
            return False, {"error": "give volumes or servers (one of the two, not empty)"}
        try:    # st2's own client, on the pack's path inside StackStorm (as for respond_gate)
            from st2client.client import Client
            from st2client.models import LiveAction
        except ImportError as exc:
            return False, {"error": "st2client is not importable (%s): migrate_batch runs "
                                    "only inside StackStorm or the local runner" % exc}
        client = Client(api_url=os.environ.get("ST2_ACTION_API_URL"),
                        token=os.environ.get("ST2_ACTION_AUTH_TOKEN"))
        if servers:
            kind, items = SERVERS, servers
            parameters = {"max_rounds": max_rounds, "root_target": root_target,
                          "ephemeral": ephemeral, "dry_run": dry_run}
        else:
            kind, items = VOLUMES, volumes
            parameters = {"procedure": procedure, "mode": mode, "method": method,
                          "placement": placement, "destination_project": destination_project,
                          "allow_in_use": allow_in_use, "dry_run": dry_run,
                          "keep_mirroring": keep_mirroring, "sync_retries": sync_retries}
        parameters = {k: v for k, v in parameters.items() if v is not None}
        own = client.executions.get_by_id(os.environ.get("ST2_ACTION_EXECUTION_ID"))
        requester = (getattr(own, "context", None) or {}).get("api_user")
        found = run_round(batch_id, items, parameters, concurrency,
                          ClientExecutions(client, LiveAction, batch_id, requester, kind),
                          round_seconds, log=lambda line: self.logger.info("%s", line),
                          kind=kind)
        return {"done": found.done, "results": found.results, "running": found.running,
                "waiting": found.waiting}
