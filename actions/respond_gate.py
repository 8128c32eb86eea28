import os

from st2common.runners.base_action import Action


class RespondGate(Action):
    """Answer an approval gate (core.ask inquiry) the way ``st2 inquiry respond`` does."""

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
            client.inquiries.respond(inquiry_id=inquiry_id, inquiry_response=answer)
        except Exception as exc:  # st2client raises requests' HTTPError with the API's message
            self.logger.error("inquiry %s: %s", inquiry_id, exc)
            return False, dict(facts, error_type=type(exc).__name__,
                               error="could not answer gate %s: %s" % (inquiry_id, exc))
        self.logger.info("inquiry %s answered %s", inquiry_id, answer)
        return dict(facts, response=answer)
