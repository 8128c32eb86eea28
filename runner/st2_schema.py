"""StackStorm's parameter rules, restated so the local runner checks a call as st2 3.9 does.

st2 metadata (action parameters, config.schema.yaml, trigger payload schemas) is Draft 4 with
draft-3 style ``required: true`` inside each property, plus ``secret``/``immutable``/``position``.
st2 validates with a custom validator; here the st2 schema is converted into a plain Draft-4
schema that the ``jsonschema`` library checks, so a call, config or payload that passes here
passes st2. Written from st2 3.9's behaviour (st2common/util/schema, util/param.py and
util/casts.py for the casts of requested parameters). The tests apply the same rules to configs
and trigger payloads.
"""
import ast
import copy
import json
from typing import Any, Callable, Dict

import jsonschema

__all__ = [
    "params_to_object_schema",
    "to_draft4",
    "assign_defaults",
    "validate_like_st2",
    "cast_like_st2",
    "NONE_MAGIC_VALUE",
    "SCHEMA_MAP_KEYWORDS",
    "SCHEMA_LIST_KEYWORDS",
]

_ST2_ONLY_KEYWORDS = ("secret", "immutable", "position")
SCHEMA_MAP_KEYWORDS = ("properties", "patternProperties", "definitions")
SCHEMA_LIST_KEYWORDS = ("allOf", "anyOf", "oneOf")

# The string st2's ``use_none`` Jinja filter produces; its casts turn it back into None.
NONE_MAGIC_VALUE = "%*****__%NONE%__*****%"


def cast_like_st2(value: Any, schema: Any) -> Any:
    """Cast one given parameter value by its own schema's type, as st2 does BEFORE it validates a
    requested execution (API and workflow tasks alike): validation sees the cast value.

    Why it matters: st2 accepts "true" for a boolean and "5" for an integer (they are cast), and
    refuses 5 for a string with a ValueError, not a schema error. None, an empty schema or one
    without a single-string type is left alone; array/object: a string is decoded as JSON, else
    as a Python literal; boolean: a string is the Python literal of its capitalised form;
    integer/number: ``int()``/``float()`` (2.7 becomes 2); string: only a string passes. The
    magic none string becomes None (for numbers: int(None), a TypeError). Raises ValueError,
    TypeError or SyntaxError like st2's casts.
    """
    kind = schema.get("type") if isinstance(schema, dict) else None
    if value is None or kind not in _CASTS:
        return value
    if kind == "string" and not isinstance(value, str):
        raise ValueError('Value "%s" must either be a string or None. Got "%s".'
                         % (value, type(value).__name__))
    if isinstance(value, str) and value == NONE_MAGIC_VALUE:
        value = None
    return _CASTS[kind](value)


def _cast_structure(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return ast.literal_eval(value)


_CASTS: Dict[str, Callable[[Any], Any]] = {
    "array": _cast_structure,
    "object": _cast_structure,
    "boolean": lambda v: ast.literal_eval(v.capitalize()) if isinstance(v, str) else v,
    "integer": int,
    "number": float,
    "string": lambda v: v,
}


def params_to_object_schema(parameters, additional_properties=False):
    """Wrap a mapping name -> parameter schema into one object schema, as st2 does.

    An empty parameter schema means "any type" in st2.
    """
    any_type = {"anyOf": [{"type": t} for t in
                          ("array", "boolean", "integer", "number", "object", "string")]}
    properties = {name: (sub if sub else copy.deepcopy(any_type))
                  for name, sub in (parameters or {}).items()}
    return {"type": "object", "properties": properties,
            "additionalProperties": additional_properties}


def _nullable(schema):
    """Return ``schema`` changed so that null is also accepted (st2's allow_default_none)."""
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            options = schema[keyword]
            if not any(isinstance(o, dict) and o.get("type") == "null" for o in options):
                options.append({"type": "null"})
            return schema
    current = schema.get("type", "string")
    if isinstance(current, list):
        if "null" not in current:
            current.append("null")
    elif current != "null":
        schema["type"] = [current, "null"]
    return schema


def to_draft4(schema, allow_default_none=True):
    """Convert an st2 schema into an equivalent plain Draft-4 schema.

    ``required: true`` in a property becomes the parent's ``required`` list; an array-form
    ``required`` is dropped, because st2's validator ignores it; st2-only keywords go. With
    ``allow_default_none`` an optional property, or one whose default is null, also accepts
    null (st2 does this when validating configs and trigger payloads).
    """
    schema = copy.deepcopy(schema)
    return _convert(schema, allow_default_none)


def _convert(schema, allow_default_none):
    if not isinstance(schema, dict):
        return schema
    # A boolean "required" was already read by the parent; an array-form one is ignored by st2.
    schema.pop("required", None)
    for keyword in _ST2_ONLY_KEYWORDS:
        schema.pop(keyword, None)
    properties = schema.get("properties")
    if isinstance(properties, dict):
        required = []
        for name, sub in properties.items():
            if not isinstance(sub, dict):
                continue
            is_required = sub.get("required") is True
            if is_required:
                required.append(name)
            if allow_default_none and sub.get("default") is None and (
                    "default" in sub or not is_required):
                _nullable(sub)
        if required:
            schema["required"] = required
    for keyword in SCHEMA_MAP_KEYWORDS:
        value = schema.get(keyword)
        if isinstance(value, dict):
            for name in value:
                value[name] = _convert(value[name], allow_default_none)
    for keyword in ("items", "additionalItems", "additionalProperties", "not"):
        value = schema.get(keyword)
        if isinstance(value, dict):
            schema[keyword] = _convert(value, allow_default_none)
        elif keyword == "items" and isinstance(value, list):
            schema[keyword] = [_convert(sub, allow_default_none) for sub in value]
    for keyword in SCHEMA_LIST_KEYWORDS:
        value = schema.get(keyword)
        if isinstance(value, list):
            schema[keyword] = [_convert(sub, allow_default_none) for sub in value]
    dependencies = schema.get("dependencies")
    if isinstance(dependencies, dict):
        for name, sub in dependencies.items():
            if isinstance(sub, dict):
                dependencies[name] = _convert(sub, allow_default_none)
    return schema


def assign_defaults(instance, schema):
    """Fill schema defaults into a copy of ``instance`` the way st2 does before validating.

    A property that is absent or null takes its default; objects and arrays that are present are
    filled recursively; absent nested objects are NOT created (that is the config loader's job, see
    fill_config_defaults).
    """
    instance = copy.deepcopy(instance)
    schema_type = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(instance, dict) and _has_type(schema_type, "object"):
        for name, sub in (schema.get("properties") or {}).items():
            if not isinstance(sub, dict):
                continue
            if "default" in sub and instance.get(name) is None:
                instance[name] = copy.deepcopy(sub["default"])
            if instance.get(name) is not None:
                instance[name] = assign_defaults(instance[name], sub)
    elif isinstance(instance, list) and _has_type(schema_type, "array"):
        items = schema.get("items")
        if isinstance(items, dict):
            items = [items] * len(instance)
        for index, sub in enumerate(items or []):
            if index >= len(instance) or not isinstance(sub, dict):
                break
            if "default" in sub and instance[index] is None:
                instance[index] = copy.deepcopy(sub["default"])
            if instance[index] is not None:
                instance[index] = assign_defaults(instance[index], sub)
    return instance


def _has_type(schema_type, wanted):
    return schema_type == wanted or (isinstance(schema_type, list) and wanted in schema_type)


def validate_like_st2(instance, schema, allow_default_none=True):
    """Validate ``instance`` against an st2 object schema; return it with defaults filled.

    Raises ``jsonschema.ValidationError`` as st2 would.
    """
    cleaned = assign_defaults(instance, schema) if isinstance(instance, dict) else instance
    jsonschema.validate(cleaned, to_draft4(schema, allow_default_none),
                        cls=jsonschema.Draft4Validator)
    return cleaned
