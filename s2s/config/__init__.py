"""Configuration: the defaults (package data), the recipes, ``--set`` overrides, validation, and
the run folder every stage reads and writes."""

from s2s.config.loading import (
    apply_override,
    defaults,
    load_config,
    merge,
    read_yaml,
    recipe_path,
    recipes,
    save_config,
)
from s2s.config.validation import ConfigError, check_choices, coerce_types, get, validate

__all__ = [
    "ConfigError",
    "apply_override",
    "check_choices",
    "coerce_types",
    "defaults",
    "get",
    "load_config",
    "merge",
    "read_yaml",
    "recipe_path",
    "recipes",
    "save_config",
    "validate",
]
