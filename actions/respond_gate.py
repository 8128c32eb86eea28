import os

from lib.base_action import PackAction
from lib.errors import CephMigrateError
from lib.gates import check_answer


class RespondGate(PackAction):
    """Answer an approval gate (core.ask inquiry) the way ``st2 inquiry respond`` does, once
    the chat user (or the account) answering may answer this gate (lib.gates)."""

    def run(self, inquiry_id, approved):
        answer = {"approved": bool(approved)}
        facts = {"inquiry_id": inquiry_id, "approved": bool(approved)}
        try:
            # st2's own virtualenv is on a pack action's path; imported here so the pack's
            # tests and the local runner load this action without st2client installed
            from st2client.client import Client
        except ImportError as exc:
            return False, dict(facts, error_type="ImportError", error=(
                "st2client is not importable (%s): answer the gate with "
                "st2 inquiry respond %s -r '{\"approved\": %s}'"
                % (exc, inquiry_id, "true" if approved else "false")))
        client = Client(api_url=os.environ.get("ST2_ACTION_API_URL"),
                        token=os.environ.get("ST2_ACTION_AUTH_TOKEN"))
        try:
            # who answers (this execution's context: the chat user of an alias execution) and
            # who asked (the gate's context carries the migration's requester)
            own = client.executions.get_by_id(os.environ.get("ST2_ACTION_EXECUTION_ID"))
            gate = client.executions.get_by_id(inquiry_id)
            who = check_answer(self.approvals,
                               (getattr(gate, "parameters", None) or {}).get("route"),
                               getattr(own, "context", None) or {},
                               getattr(gate, "context", None) or {}, approving=bool(approved))
        except CephMigrateError as exc:
            self.logger.error("inquiry %s: %s", inquiry_id, exc)
            return False, dict(facts, error_type=type(exc).__name__,
                               error="not answered: %s" % exc)
        except Exception as exc:  # st2client raises requests' HTTPError with the API's message
            self.logger.error("inquiry %s: %s", inquiry_id, exc)
            return False, dict(facts, error_type=type(exc).__name__,
                               error="could not read gate %s: %s" % (inquiry_id, exc))
        try:
            client.inquiries.respond(inquiry_id=inquiry_id, inquiry_response=answer)
        except Exception as exc:
            self.logger.error("inquiry %s: %s", inquiry_id, exc)
            return False, dict(facts, error_type=type(exc).__name__,
                               error="could not answer gate %s: %s" % (inquiry_id, exc))
        self.logger.info("inquiry %s answered %s by %s", inquiry_id, answer, who["answered_by"])
        return dict(facts, response=answer, **who)
