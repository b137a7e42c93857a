"""The options of the ``altgrad`` MkDocs plugin: declared once, checked, overridable by env.

Where the data come from and the study's design are set under the plugin in mkdocs.yml::

    plugins:
      - search
      - altgrad:
          wandb_project: my-entity/my-study

Every option is one line of :class:`AltgradOptions` (a MkDocs ``Config``): to add one, add a
line there (and its row to the README's option table). An unknown or mistyped option fails
the build with its name and the nearest valid one; a value of the wrong type or form is a
one-line error. Each option can be overridden by the environment variable ``ALTGRAD_<NAME>``
(a non-empty value wins; lists and mappings as JSON, lists also as ``a, b``).

``extra.altgrad`` (where the options lived before the plugin) is still read, as a deprecated
alias with the same checks: a key set under the plugin wins over the same key there.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from typing import Any, Mapping

from mkdocs.config import base
from mkdocs.config import config_options as c
from mkdocs.config.base import ValidationError

#: How a W&B project is named.
PROJECT = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class Names(c.BaseConfigOption[Any]):
    """A list of config keys: a YAML list, or a string (JSON list, or ``a, b``)."""

    def run_validation(self, value: object) -> list[str] | None:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            text = value.strip()
            value = _json(text) if text[:1] in '[{"' else [v.strip() for v in text.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValidationError(f"must be a list of config keys, not {value!r}")
        return list(value)


class MappingOption(c.BaseConfigOption[Any]):
    """A mapping, or a JSON object in a string (an environment value); unset is None."""

    #: what the mapping must be, for the error
    expected = "must be a mapping"

    def run_validation(self, value: object) -> dict[str, Any] | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str):
            value = _json(value)
        if not isinstance(value, Mapping):
            raise ValidationError(self.expected)
        return dict(value)


class Filter(MappingOption):
    """A W&B filter."""

    expected = "must be a mapping, a W&B filter such as {'config.learning_rate': {'$lte': 0.01}}"


class MetricMap(MappingOption):
    """The metric map (analysis/metrics.py); its keys are checked where it is read (metric_options)."""

    expected = ("must be a mapping of train_loss, primary, direction (lower/higher) and rates, "
                "e.g. {primary: eval/f1_micro, direction: higher}")


class Project(c.BaseConfigOption[Any]):
    """``ENTITY/PROJECT``, or unset."""

    def run_validation(self, value: object) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not PROJECT.match(value.strip()):
            raise ValidationError(f"must be ENTITY/PROJECT (e.g. my-entity/my-study), not {value!r}")
        return value.strip()


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"is not valid JSON ({exc.msg}): write it as YAML in mkdocs.yml "
                              "or as JSON in the environment variable") from None


class Flag(c.BaseConfigOption[bool]):
    """Yes or no: a YAML boolean, or true/false (yes/no, 1/0, on/off) in a string, as an
    environment variable gives it."""

    def __init__(self, default: bool) -> None:
        super().__init__()
        self.default = default

    def run_validation(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off"):
            return False
        raise ValidationError(f"{value!r} is not yes or no --> Do: write true or false")


class AltgradOptions(base.Config):
    """The plugin's options; unset = the default or inferred from the runs (README, Methods)."""

    #: the snapshot folder to build from (without a W&B project); default data/bundled
    snapshot = c.Optional(c.Type(str))
    #: a W&B project, ENTITY/PROJECT: fetched (changed runs only) into wandb_snapshot
    wandb_project = Project()
    #: where the W&B project's snapshot is kept; default data/wandb
    wandb_snapshot = c.Optional(c.Type(str))
    #: the design's factors (config keys); default inferred from the runs
    factors = Names()
    #: config keys that are never factors
    ignore = Names()
    #: a W&B filter choosing the study's runs (sent to W&B, applied to the snapshot)
    filters = Filter()
    #: the baseline format; default BF16, then FP16
    baseline = c.Optional(c.Type(str))
    #: the metric compared; default val_loss when every finished run logged it, else loss
    #: (checked against the metrics the analysis knows, analysis/design.py)
    metric = c.Optional(c.Type(str))
    #: the metric map: which key is the train loss, the primary metric (and its direction),
    #: each quantisation rate and whether it is cumulative; default inferred from the keys
    metrics = MetricMap()
    #: factors that are tuning hyperparameters: each optimizer is also compared at its own best
    #: level of them (analysis/findings_parts.at_best); default learning_rate
    tuning = Names()
    #: the site's own templates folder (beside mkdocs.yml); its files replace the shipped ones
    templates = c.Type(str, default="templates")
    #: run pages show the runs' console output (offline runs: the tail on a failed run's page,
    #: the whole log as a download); false leaves it out of the site
    console = Flag(default=True)


NAMES = tuple(name for name, _ in AltgradOptions._schema)
#: Options that have no environment override (where the site's own files are is not data).
NO_ENV = ("templates",)


def env_name(option: str) -> str:
    return f"ALTGRAD_{option.upper()}"


def unknown_key_error(key: str) -> str:
    """The message for an option the plugin does not have, with the nearest valid one."""
    near = difflib.get_close_matches(str(key), NAMES, n=1, cutoff=0.5)
    hint = f"did you mean '{near[0]}'? " if near else ""
    return f"unknown option '{key}': {hint}--> Do: use one of {', '.join(NAMES)}."


def unknown_as_errors(warnings: list[tuple[str, str]]) -> tuple[list[tuple[str, ValidationError]],
                                                               list[tuple[str, str]]]:
    """Split MkDocs' config warnings: an unrecognised option becomes an error."""
    errors, rest = [], []
    for key, message in warnings:
        if message.startswith("Unrecognised configuration name"):
            errors.append((key, ValidationError(unknown_key_error(key))))
        else:
            rest.append((key, message))
    return errors, rest


class OptionsError(Exception):
    """An option is unknown or its value is wrong (one line: which, why, what to do)."""


def check(options: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    """Validate ``options`` (from ``where``, e.g. ``extra.altgrad``) against the schema."""
    cfg = AltgradOptions()
    cfg.load_dict(dict(options or {}))
    errors, warnings = cfg.validate()
    more, _ = unknown_as_errors(list(warnings))
    for key, exc in [*errors, *more]:
        raise OptionsError(f"{where.format(key=key)}: {exc}")
    return {name: cfg[name] for name in NAMES}


def effective(plugin: Mapping[str, Any] | None, legacy: Mapping[str, Any] | None,
              environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The options a build uses: ``legacy`` (extra.altgrad) under ``plugin`` (the plugin's
    own, already checked), both under the environment's ``ALTGRAD_*`` values."""
    environ = os.environ if environ is None else environ
    merged = check(legacy, "extra.altgrad.{key}")
    defaults = check({}, "")
    for name, value in (plugin or {}).items():
        if name in merged and (value != defaults[name] or name not in (legacy or {})):
            merged[name] = value
    for name in NAMES:
        text = environ.get(env_name(name), "")
        if name not in NO_ENV and text.strip():
            merged[name] = check({name: text}, f"environment variable {env_name(name)}")[name]
    return merged
