"""Make orquesta 1.2.0 (the only release on PyPI) run on Python 3.10+ with networkx 2+/3.

Imported before orquesta. Each patch repairs one incompatibility of that old release; none
changes what a workflow means.
"""
import collections
import collections.abc
import functools
from typing import Any, Dict, Tuple

for _name in ("Mapping", "MutableMapping", "Sequence", "MutableSequence", "Iterable"):
    if not hasattr(collections, _name):          # removed from collections in Python 3.10
        setattr(collections, _name, getattr(collections.abc, _name))

import networkx  # noqa: E402

if not hasattr(networkx.Graph, "node"):          # networkx 2.4 dropped Graph.node
    networkx.Graph.node = property(lambda self: self.nodes)

from orquesta.graphing import WorkflowGraph  # noqa: E402
from orquesta.specs import base as spec_base  # noqa: E402
from orquesta.utils import parameters  # noqa: E402


def _root_nodes(graph):
    """The tasks nothing leads to (networkx 2+ returns a view, not a dict, from in_degree)."""
    nodes = [{"id": node, "name": graph.nodes[node].get("name", node)}
             for node, degree in dict(graph.in_degree()).items() if degree == 0]
    return sorted(nodes, key=lambda node: node["id"])


WorkflowGraph.get_root_nodes = staticmethod(_root_nodes)

# Python 3.11 rejects global inline flags in the middle of a pattern: scope them instead.
parameters.REGEX_INLINE_PARAM_VARIATIONS = [
    pattern.replace("(?i)true", "(?i:true)").replace("(?i)false", "(?i:false)")
    for pattern in parameters.REGEX_INLINE_PARAM_VARIATIONS]
parameters.REGEX_INLINE_PARAMS = r"([\w]+)=(%s)" % "|".join(
    parameters.REGEX_INLINE_PARAM_VARIATIONS)

# Every spec object rebuilds its class's schema and meta schema by deep-copying merges,
# thousands of times per workflow run (nine tenths of a simulated run's time). Both depend on
# the class and the arguments only, and their callers read them (merge_schema copies what it
# merges): build each once.
spec_base.Spec.get_meta_schema = classmethod(
    functools.lru_cache(maxsize=None)(spec_base.Spec.get_meta_schema.__func__))
_build_schema = spec_base.Spec.get_schema.__func__
_schemas: Dict[Tuple[type, Tuple[str, ...], bool], Dict[str, Any]] = {}


def _schema(cls, includes=("meta",), resolve_specs=True):
    key = (cls, tuple(includes or ()), resolve_specs)
    if key not in _schemas:
        _schemas[key] = _build_schema(cls, includes=list(key[1]), resolve_specs=resolve_specs)
    return _schemas[key]


spec_base.Spec.get_schema = classmethod(_schema)
