"""StackStorm's flavour of JSON Schema, restated so tests can apply it without StackStorm.

st2 metadata (action parameters, config.schema.yaml, trigger payload schemas) is Draft 4 with
draft-3 style ``required: true`` inside each property, plus ``secret``/``immutable``/``position``.
st2 validates with a custom validator; here the st2 schema is converted into a plain Draft-4
schema that the ``jsonschema`` library checks, so a config or payload that passes here passes st2.
Written from st2 3.9's behaviour (st2common/util/schema, util/pack.py, util/config_loader.py,
util/param.py and util/casts.py for the casts of requested parameters).
"""
import ast
import copy
import json
import re
from typing import Any, Callable, Dict

import jsonschema

__all__ = [
    "ALLOWED_PARAM_KEYWORDS",
    "SIMPLE_TYPES",
    "param_schema_problems",
    "params_to_object_schema",
    "to_draft4",
    "assign_defaults",
    "validate_like_st2",
    "fill_config_defaults",
    "is_jinja_expression",
    "cast_like_st2",
    "NONE_MAGIC_VALUE",
]

# Keywords st2's parameter meta-schema accepts (it rejects any other key, "format" and "$ref"
# included): the Draft-4 core/validation keywords plus st2's own extensions.
ALLOWED_PARAM_KEYWORDS = frozenset([
    "id", "$schema", "title", "description", "default",
    "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern",
    "additionalItems", "items", "maxItems", "minItems", "uniqueItems",
    "maxProperties", "minProperties",
    "additionalProperties", "definitions", "properties", "patternProperties", "dependencies",
    "enum", "type", "allOf", "anyOf", "oneOf", "not",
    # st2 extensions
    "required", "secret", "immutable", "position",
])
SIMPLE_TYPES = frozenset(["array", "boolean", "integer", "null", "number", "object", "string"])
_ST2_ONLY_KEYWORDS = ("secret", "immutable", "position")
_SCHEMA_MAP_KEYWORDS = ("properties", "patternProperties", "definitions")
_SCHEMA_LIST_KEYWORDS = ("allOf", "anyOf", "oneOf")
_JINJA_RE = re.compile(r"{{.*}}|{%.*%}", re.DOTALL)


def is_jinja_expression(value):
    """True for a string st2 renders as Jinja (dynamic config values, parameter templates)."""
    return isinstance(value, str) and bool(_JINJA_RE.search(value))


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


def _subschemas(schema, path):
    """Yield (path, subschema) for every schema nested in ``schema`` (one level)."""
    for keyword in _SCHEMA_MAP_KEYWORDS:
        value = schema.get(keyword)
        if isinstance(value, dict):
            for name, sub in value.items():
                yield "%s.%s.%s" % (path, keyword, name), sub
    for keyword in ("items", "additionalItems", "additionalProperties", "not"):
        value = schema.get(keyword)
        if isinstance(value, dict):
            yield "%s.%s" % (path, keyword), value
        elif keyword == "items" and isinstance(value, list):
            for index, sub in enumerate(value):
                yield "%s.items[%d]" % (path, index), sub
    for keyword in _SCHEMA_LIST_KEYWORDS:
        value = schema.get(keyword)
        if isinstance(value, list):
            for index, sub in enumerate(value):
                yield "%s.%s[%d]" % (path, keyword, index), sub
    dependencies = schema.get("dependencies")
    if isinstance(dependencies, dict):
        for name, sub in dependencies.items():
            if isinstance(sub, dict):
                yield "%s.dependencies.%s" % (path, name), sub


def param_schema_problems(schema, path="parameter"):
    """List what st2 would reject (or silently ignore) in one parameter schema, recursively.

    Rules: only ALLOWED_PARAM_KEYWORDS; ``type`` is one string (st2's parameter meta-schema has no
    type lists); ``required``/``secret``/``immutable`` are booleans (array-form ``required`` is
    silently ignored by st2, so it is an error here); ``position`` is a non-negative integer; an
    ``immutable`` parameter has a default. The rest of Draft 4 is checked by jsonschema on the
    converted schema.
    """
    if not isinstance(schema, dict):
        return ["%s: a schema must be a mapping, got %r" % (path, type(schema).__name__)]
    problems = []
    unknown = sorted(set(schema) - ALLOWED_PARAM_KEYWORDS)
    if unknown:
        problems.append("%s: keywords not allowed by st2: %s" % (path, ", ".join(unknown)))
    if "type" in schema and not (isinstance(schema["type"], str)
                                 and schema["type"] in SIMPLE_TYPES):
        problems.append("%s: type must be one of %s as a single string, got %r"
                        % (path, sorted(SIMPLE_TYPES), schema["type"]))
    for flag in ("required", "secret", "immutable"):
        if flag in schema and not isinstance(schema[flag], bool):
            hint = (" (array-form required is ignored by st2: put required: true in each "
                    "property)" if flag == "required" else "")
            problems.append("%s: %s must be a boolean, got %r%s"
                            % (path, flag, schema[flag], hint))
    if "position" in schema:
        position = schema["position"]
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            problems.append("%s: position must be a non-negative integer, got %r"
                            % (path, position))
    if schema.get("immutable") is True and "default" not in schema:
        problems.append("%s: an immutable parameter needs a default" % path)
    for sub_path, sub in _subschemas(schema, path):
        problems.extend(param_schema_problems(sub, sub_path))
    if not problems:
        try:
            jsonschema.Draft4Validator.check_schema(to_draft4(schema, allow_default_none=False))
        except jsonschema.SchemaError as exc:
            problems.append("%s: not a valid Draft-4 schema: %s" % (path, exc.message))
    return problems


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
    for keyword in _SCHEMA_MAP_KEYWORDS:
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
    for keyword in _SCHEMA_LIST_KEYWORDS:
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


def fill_config_defaults(config_schema, config):
    """Return ``config`` with schema defaults filled the way st2's config loader does at run time.

    Unlike validation, the loader also creates an absent nested object or array when its schema
    has properties/items, so actions see every nested default even if the operator left the whole
    section out.
    """
    config = copy.deepcopy(config) if config is not None else {}
    _fill(config_schema or {}, config)
    return config


def _fill(schema_by_key, config):
    entries = schema_by_key.items() if isinstance(schema_by_key, dict) \
        else enumerate(schema_by_key)
    for key, item in entries:
        if not isinstance(item, dict):
            continue
        present = key in config if isinstance(config, dict) else key < len(config)
        if "default" in item and not present:
            config[key] = copy.deepcopy(item["default"])
        try:
            value = config[key]
        except (KeyError, IndexError):
            value = None
        if item.get("type") == "object" and (item.get("properties")
                                             or item.get("patternProperties")
                                             or item.get("additionalProperties")):
            if not value:
                value = config[key] = {}
            _fill(_object_property_schemas(item, value), value)
        elif item.get("type") == "array" and (item.get("items") or item.get("additionalItems")):
            if not value:
                value = config[key] = []
            _fill(_array_item_schemas(item, len(value)), value)


def _object_property_schemas(schema, value):
    result = {key: {} for key in value}
    properties = schema.get("properties") or {}
    result.update(properties)
    extra = [key for key in value if key not in properties]
    patterns = schema.get("patternProperties") or {}
    for key in list(extra):
        matched = [sub for pattern, sub in patterns.items() if re.search(pattern, key)]
        if matched:
            merged = {}
            for sub in matched:
                merged.update(sub)
            result[key] = merged
            extra.remove(key)
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        for key in extra:
            result[key] = additional
    return result


def _array_item_schemas(schema, count):
    items = schema.get("items") or []
    result = [items] * count if isinstance(items, dict) else list(items)
    additional = schema.get("additionalItems")
    if len(result) < count and isinstance(additional, dict):
        result.extend([additional] * (count - len(result)))
    return result
