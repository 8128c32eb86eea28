"""The local runner: the pack's real Orquesta workflows and real action classes, without
StackStorm (st2common is not on PyPI). For demos and tests, not a second product."""
