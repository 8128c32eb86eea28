"""StackStorm's rules for a pack's metadata and config that the local runner does not need:
what st2's parameter meta-schema accepts (checked at registration) and the config loader's
defaults. The parameter rules themselves are the runner's (``runner/st2_schema.py``).
Written from st2 3.9's behaviour (st2common/util/schema, util/pack.py, util/config_loader.py).
"""
import copy
import re

import jsonschema

from runner.st2_schema import SCHEMA_LIST_KEYWORDS, SCHEMA_MAP_KEYWORDS, to_draft4

__all__ = [
    "ALLOWED_PARAM_KEYWORDS",
    "SIMPLE_TYPES",
    "param_schema_problems",
    "fill_config_defaults",
    "is_jinja_expression",
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
_JINJA_RE = re.compile(r"{{.*}}|{%.*%}", re.DOTALL)


def is_jinja_expression(value):
    """True for a string st2 renders as Jinja (dynamic config values, parameter templates)."""
    return isinstance(value, str) and bool(_JINJA_RE.search(value))


def _subschemas(schema, path):
    """Yield (path, subschema) for every schema nested in ``schema`` (one level)."""
    for keyword in SCHEMA_MAP_KEYWORDS:
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
    for keyword in SCHEMA_LIST_KEYWORDS:
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
