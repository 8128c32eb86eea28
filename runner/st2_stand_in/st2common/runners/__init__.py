"""Stand-in for ``st2common.runners``: only what Python-runner actions import."""
