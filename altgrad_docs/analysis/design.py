"""The experimental design, read from the runs: factors, conditions, pairing, and what is off.

A real W&B project sweeps more than format x optimizer: learning rates, interventions
(``enable_partition_clipping``), step budgets. Grouping by format x optimizer alone pools the
levels of such a sweep into one fake effect. :func:`infer_design` reads ``config_json`` of the
completed runs and finds the *factors*: a config key whose value differs between completed runs
within some format x optimizer cell. Not factors: keys that identify a run (unique per run),
bookkeeping (data-contract's list), keys that follow the format or optimizer, the seed (the
replicate), and the keys that define format and optimizer. A key with one value everywhere is
a constant. A condition is format x optimizer x every factor; ``setting`` is the readable label
of the factor levels ("" when there are none), a string column of the run table.

Values equal as numbers are one level (``"1e-3"`` and 0.001; ``Design.spellings`` says which
spellings were merged). Only formats of the registry and the baselines form conditions; runs
naming any other format are left out with a warning (analysis/design_checks.py). Runs whose
configs hold no seed are replicates, not duplicates: ``Design.seeded`` is False and the
optimizer comparison is unpaired (Welch).

Everything here is a pure function of the run table (and, for identical conditions, of one
hash per run history); its warnings are returned in ``Design.warnings`` for the site to log.
:class:`DesignOptions` holds the overrides of the ``altgrad`` plugin's options; which keys are
factors is decided in :mod:`.design_keys`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from altgrad_docs.formats import BASELINES, classify_format
from altgrad_docs.runs import STATUS_OF_STATE, to_float

from . import design_checks as checks
from .filters import FilterError, matches
from .metrics import MetricError, MetricMap, infer_metric_map, metric_options, train_loss_key, with_metric_columns
from .design_keys import (DEFAULTS, canon_value, classify_keys, level_key, level_text, program_scopes,
                          setting_label, with_program)


class DesignError(ValueError):
    """A design option in mkdocs.yml that cannot be used (the message says which and how)."""


@dataclass(frozen=True)
class DesignOptions:
    """``extra.altgrad`` overrides: factors (explicit list), ignore, filters, baseline, metric
    (the primary metric's key) and metrics (the metric map, analysis/metrics.py)."""

    factors: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    filters: Mapping[str, Any] | None = None
    baseline: str | None = None
    metric: str | None = None
    metrics: Mapping[str, Any] | None = None
    #: factors that are tuning hyperparameters (each optimizer also compared at its own best
    #: level; analysis/findings_parts.at_best); None: learning_rate
    tuning: tuple[str, ...] | None = None

    @classmethod
    def from_config(cls, opts: Mapping[str, Any] | None) -> DesignOptions:
        """From ``extra.altgrad`` (values may come from ``!ENV``: strings are parsed as JSON
        lists/dicts, or a comma-separated list for ``factors`` and ``ignore``)."""
        opts = dict(opts or {})
        factors = _names(opts.get("factors"), "factors")
        filters = opts.get("filters")
        if isinstance(filters, str):
            filters = _json(filters, "filters") if filters.strip() else None
        if filters is not None and not isinstance(filters, Mapping):
            raise DesignError("altgrad option filters must be a mapping (a W&B filter such as "
                              "{'config.learning_rate': {'$in': [0.001]}}) --> Do: fix mkdocs.yml.")
        try:
            metric, metrics = metric_options(opts)
        except MetricError as exc:
            raise DesignError(str(exc)) from exc
        baseline = opts.get("baseline") or None
        if baseline is not None and not isinstance(baseline, str):
            raise DesignError(f"altgrad option baseline is {baseline!r}; it must be one format name "
                              "(BF16, FP16, FP32 or an 8-bit format) --> Do: fix mkdocs.yml or ALTGRAD_BASELINE.")
        return cls(factors=tuple(factors) if factors is not None else None,
                   ignore=tuple(_names(opts.get("ignore"), "ignore") or ()),
                   filters=filters, baseline=baseline,
                   metric=metric, metrics=metrics or None,
                   tuning=tuple(t) if (t := _names(opts.get("tuning"), "tuning")) is not None else None)


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DesignError(f"altgrad option {what} is not valid JSON ({exc.msg}) --> Do: write it as "
                          "YAML in mkdocs.yml or as JSON in the environment variable.") from exc


def _names(value: Any, what: str) -> list[str] | None:
    """A list of config keys: YAML list, JSON list, or comma-separated text. Anything else
    (a JSON object or string, a number, a list of non-strings) is refused, naming the value."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        json_like = text[:1] in '[{"' or text in ("true", "false", "null")
        value = _json(text, what) if json_like else [v.strip() for v in text.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        shown = json.dumps(value, default=str)
        raise DesignError(f"altgrad option {what} (ALTGRAD_{what.upper()}) is {shown[:120]}, not a list of "
                          f"config keys --> Do: write a list such as [learning_rate, seed] in mkdocs.yml, or "
                          f"ALTGRAD_{what.upper()}='learning_rate,seed' (or a JSON list).")
    return list(value)


@dataclass
class Design:
    """What the study is. Tables are small DataFrames; see :func:`infer_design`.

    ``runs``: one row per run of the table (run_id, name, state, status, format, optimizer,
    seed, steps, setting, the factor columns, included, reason). ``cells``: one row per
    condition with n, crashed, seeds, duplicates. ``pairs``: one row per (format, setting) with
    the seeds both optimizers ran once. ``missing``: conditions of the full crossing with no run.
    """

    factors: dict[str, list[Any]]
    constants: dict[str, Any]
    follows: dict[str, str]  # key -> "format" / "optimizer" / "format and optimizer" / "seed"
    identity: list[str]  # keys unique per run (names, paths, ids, timestamps)
    bookkeeping: list[str]  # bookkeeping keys present in the configs
    ignored: list[str]  # keys of extra.altgrad.ignore present in the configs
    metric: str  # run-table column of the primary metric: final_val_loss, final_loss, final_<key>
    baseline: str
    runs: pd.DataFrame
    cells: pd.DataFrame
    pairs: pd.DataFrame
    missing: pd.DataFrame
    duplicates: pd.DataFrame
    lengths: pd.DataFrame
    explicit: bool = False  # factors given in extra.altgrad, not inferred
    identical: list[list[tuple[str, str, str]]] = field(default_factory=list)
    #: every included run's config has a seed: runs can be paired by seed. False (a trainer
    #: that logs no seed): replicates are told apart by run id only; comparisons are unpaired.
    seeded: bool = True
    #: key -> level text -> the spellings merged into it ("0.001" and "\"1e-3\""): one level.
    spellings: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    #: warning lines (cause, value, "--> Do:") the site logs: formats outside the registry,
    #: options that name no key or no run.
    warnings: list[str] = field(default_factory=list)
    #: runs read as the BF16 baseline though their configs name no precision (fp8_format none,
    #: use_fp8 false): {"label", "n", "because"}; {} when none (design_checks.assumed_baseline)
    assumed_baseline: dict[str, Any] = field(default_factory=dict)
    higher_is_better: bool = False  # the primary metric's direction (analysis/metrics.py)
    metric_map: MetricMap = field(default_factory=MetricMap)  # which key means what

    @property
    def factor_names(self) -> list[str]:
        return list(self.factors)

    @property
    def settings(self) -> list[str]:
        inc = self.runs[self.runs["included"]]
        return sorted(set(inc["setting"]), key=lambda s: self._setting_order.get(s, (math.inf,)))

    @property
    def _setting_order(self) -> dict[str, tuple]:
        return {s: k for s, k in zip(self.runs["setting"], self.runs["_order"])}

    @property
    def left_out(self) -> pd.DataFrame:
        out = self.runs[~self.runs["included"]]
        return out[["run_id", "name", "state", "format", "optimizer", "seed", "setting", "reason"]].reset_index(drop=True)

    @property
    def paired(self) -> bool:
        """Whether the optimizer comparison pairs runs by seed (else unpaired, Welch)."""
        return self.seeded

    @property
    def thin(self) -> pd.DataFrame:
        """(format, setting) with fewer than 2 paired seeds (none when runs have no seeds:
        nothing is paired, which the pages say once)."""
        if not self.seeded:
            return self.pairs.iloc[0:0]
        return self.pairs[self.pairs["n_pairs"] < 2].reset_index(drop=True)

    def budgets(self) -> dict[str, int]:
        """run_id -> step budget for the runs of groups of different lengths: their "final"
        values are read at the shortest finished run's last step (analysis.pipeline)."""
        out = {}
        for _, r in self.lengths.iterrows():
            g = self.runs[self.runs["included"] & (self.runs["format"] == r["format"])
                          & (self.runs["setting"] == r["setting"])]
            if r["scope"] == "format" and r["budget"] is not None:
                out.update({str(rid): int(r["budget"]) for rid in g["run_id"]})
        return out

    @property
    def balanced(self) -> bool:
        return bool(self.cells["n"].nunique() <= 1 and self.missing.empty)

    def study(self, runs: pd.DataFrame) -> pd.DataFrame:
        """The run table of the study: filtered-out runs dropped, ``setting`` (string) and the
        factor columns added (a factor that is already a column keeps it)."""
        meta = self.runs.set_index("run_id")
        keep = [rid for rid in runs["run_id"].astype(str) if meta.at[rid, "studied"]]
        out = runs[runs["run_id"].astype(str).isin(keep).to_numpy()].copy()
        ids = out["run_id"].astype(str)
        out["setting"] = pd.array([meta.at[r, "setting"] for r in ids], dtype="string")
        for key in self.factors:
            if key not in out:
                out[key] = [meta.at[r, key] for r in ids]
        out = out.reset_index(drop=True)
        out.attrs["factors"] = self.factor_names
        return out

    def distinct_formats(self, formats: Iterable[str]) -> list[str]:
        """``formats`` with each group of identical formats counted once (its first member)."""
        alias = {}
        for group in self.identical_formats():
            for f in group[1:]:
                alias[f] = group[0]
        return list(dict.fromkeys(alias.get(f, f) for f in formats))

    def identical_formats(self) -> list[list[str]]:
        """Groups of formats whose conditions are identical under every optimizer and setting."""
        pairs: dict[frozenset, set] = {}
        for group in self.identical:
            fmts = sorted({c[0] for c in group})
            for a in fmts:
                for b in fmts:
                    if a < b:
                        pairs.setdefault(frozenset((a, b)), set()).update((c[1], c[2]) for c in group)
        ran = {(f, o, g) for f, o, g in zip(self.cells["format"], self.cells["optimizer"], self.cells["setting"])}
        out: list[list[str]] = []
        for key, shared in sorted(pairs.items(), key=lambda kv: sorted(kv[0])):
            a, b = sorted(key)
            if all((o, g) in shared for f, o, g in ran if f in (a, b)):
                merged = next((grp for grp in out if a in grp or b in grp), None)
                if merged is None:
                    out.append([a, b])
                else:
                    merged.extend(f for f in (a, b) if f not in merged)
        from .scorecard import format_sort_key
        return [sorted(g, key=format_sort_key) for g in out]


# ---------------------------------------------------------------------------------------------
# Reading configs


def _config(text: Any) -> dict[str, Any]:
    if not isinstance(text, str) or not text:
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): (v["value"] if isinstance(v, dict) and "value" in v else v)
            for k, v in raw.items() if not str(k).startswith("_")}


def _studied(runs: pd.DataFrame, filters: Mapping[str, Any] | None) -> np.ndarray:
    if not filters:
        return np.ones(len(runs), dtype=bool)
    try:
        return np.array([matches(filters, _filter_doc(r)) for _, r in runs.iterrows()], dtype=bool)
    except FilterError as exc:
        raise DesignError(f"altgrad option filters: {exc} --> Do: fix the filter in mkdocs.yml.") from exc


def _filter_doc(r: pd.Series) -> dict[str, Any]:
    """One run as the W&B filter sees it: config.*, summary_metrics.*, state, tags, names."""
    def get(col: str, default: Any = "") -> Any:
        value = r[col] if col in r.index else default
        return default if value is pd.NA or value is None else value
    try:
        tags = json.loads(get("tags", "[]") or "[]")
    except json.JSONDecodeError:
        tags = []
    try:
        summary = json.loads(get("summary_json", "{}") or "{}")
    except json.JSONDecodeError:
        summary = {}
    return {"config": _config(get("config_json", "")), "summary_metrics": summary, "state": get("state"),
            "tags": tags, "display_name": get("name"), "name": get("run_id"), "group": get("group"),
            "created_at": get("created_at"), "createdAt": get("created_at")}


# ---------------------------------------------------------------------------------------------
# Classifying keys


def choose_metric(runs: pd.DataFrame, status: pd.Series, crashed: np.ndarray) -> str:
    """The run-table column of the primary metric: the first candidate (a validation loss,
    then an evaluation task metric, then the train loss; analysis/metrics.py) that every
    finished, non-crashed run logged with a finite final value (final_val_loss, final_loss or
    final_<key>).

    A run that failed before its first evaluation has no val_loss: it is a failure and does
    not change the metric."""
    return choose_metric_map(runs, status, crashed).column


def choose_metric_map(runs: pd.DataFrame, status: pd.Series, crashed: np.ndarray,
                      options: DesignOptions | None = None) -> MetricMap:
    """The study's metric map: declared in ``options`` (metric, metrics), else inferred."""
    options = options or DesignOptions()
    ok = (pd.Series(status).astype(str) == "finished").to_numpy() & ~np.asarray(crashed, dtype=bool)
    try:
        return infer_metric_map(runs, ok, options.metric, options.metrics)
    except MetricError as exc:
        raise DesignError(str(exc)) from exc


def choose_baseline(formats: Iterable[str], wanted: str | None = None) -> str:
    """``wanted`` (any spelling: bf16, float32, fp8_e5m2 ...) when it has runs, else BF16, then
    FP16, then FP32 as present (BF16 when none is)."""
    present = set(formats)
    if wanted:
        label = classify_format(wanted).label or wanted
        if label in present:
            return label
    return next((b for b in ("BF16", "FP16", *BASELINES) if b in present), "BF16")


def infer_design(runs: pd.DataFrame, options: DesignOptions | None = None,
                 history_hashes: Mapping[str, str] | None = None) -> Design:
    """The design of the run table (see the module docstring)."""
    from .scorecard import crashed_mask, ensure_columns, format_sort_key

    options = options or DesignOptions()
    df = ensure_columns(runs).reset_index(drop=True)
    df = with_metric_columns(df, MetricMap(train_loss=train_loss_key(df, options.metrics)))
    status = df["status"].astype("string").fillna("").map(lambda s: STATUS_OF_STATE.get(s, s))
    studied = _studied(df, options.filters)
    programs = program_scopes(df["program"] if "program" in df else None)
    configs = with_program([_config(c) for c in (df["config_json"] if "config_json" in df else [""] * len(df))],
                           programs)
    frame = df[["format", "optimizer", "seed"]].astype({"format": str, "optimizer": str})
    known, format_reasons, warnings = checks.format_exclusions(frame["format"].tolist(), df["run_id"].astype(str).tolist())
    known = np.array(known, dtype=bool) & studied
    done = status.isin(["finished", "failed"]).to_numpy() & known
    factors, constants, follows, identity, bookkeeping, ignored = classify_keys(
        frame[done].reset_index(drop=True), [c for c, d in zip(configs, done) if d], options,
        None if programs is None else [p for p, d in zip(programs, done) if d])
    crashed = np.zeros(len(df), dtype=bool)
    crashed[done] = crashed_mask(df[done])
    meta = pd.DataFrame({
        "run_id": df["run_id"].astype(str), "name": df["name"].astype(str), "state": df["state"].astype(str)
        if "state" in df else status, "status": status.astype(str), "format": frame["format"],
        "optimizer": frame["optimizer"], "seed": pd.to_numeric(df["seed"], errors="coerce"),
        "steps": pd.to_numeric(df["steps"], errors="coerce") if "steps" in df else np.nan,
        "max_steps": [to_float(c.get("max_steps")) for c in configs], "crashed": crashed,
        "program": programs if programs is not None else [None] * len(df),  # only when several
    })
    if options.factors is not None:  # a named key no run has is no factor (warned below)
        factors = {k: v for k, v in factors.items() if any(k in c for c in configs)}
    level_rows = [{k: checks.as_value(c.get(k, DEFAULTS.get(k))) for k in factors} for c in configs]
    meta["setting"] = [setting_label(lv) for lv in level_rows]
    for k in factors:
        meta[k] = [lv[k] for lv in level_rows]
    meta["_order"] = [tuple(level_key(lv[k]) for k in factors) for lv in level_rows]
    meta["included"] = done
    meta["studied"] = known
    meta["reason"] = np.where(~studied, "filtered out", np.where(
        ~known, [format_reasons.get(f, "") for f in meta["format"]], np.where(done, "", status.astype(str))))
    metric_map = choose_metric_map(df[done], status[done], crashed[done], options)
    metric = metric_map.column
    baseline = choose_baseline(meta.loc[done, "format"], options.baseline)
    if options.baseline:
        wanted = classify_format(options.baseline).label or options.baseline
        warnings.append(checks.baseline_warning(options.baseline, wanted, meta.loc[done, "format"], baseline))
    warnings.extend(checks.option_warnings(options.factors, options.ignore, {k for c in configs for k in c}))
    warnings.append(checks.filters_warning(options.filters, int(studied.sum()), len(df)))
    inc = meta[done]
    cells = _cells(inc, factors, format_sort_key)
    design = Design(factors=factors, constants=constants, follows=follows, identity=identity,
                    bookkeeping=bookkeeping, ignored=ignored, metric=metric, baseline=baseline, runs=meta,
                    cells=cells, pairs=_pairs(inc, factors, format_sort_key),
                    missing=_missing(inc, factors, cells), duplicates=_duplicates(inc, factors),
                    lengths=_lengths(inc, factors), explicit=options.factors is not None,
                    seeded=bool(inc["seed"].notna().all()),
                    spellings=checks.spellings([c for c, d in zip(configs, done) if d], [*factors, *constants],
                                               canon_value, level_text),
                    warnings=[w for w in warnings if w],
                    assumed_baseline=checks.assumed_baseline([c for c, d in zip(configs, done) if d]),
                    higher_is_better=metric_map.higher_is_better, metric_map=metric_map)
    if history_hashes:
        design.identical = identical_conditions(meta[done], history_hashes)
    return design


def _sort_conditions(df: pd.DataFrame, keys: list[str], format_sort_key) -> pd.DataFrame:
    if df.empty:
        return df.reset_index(drop=True)
    order = sorted(range(len(df)), key=lambda i: (
        format_sort_key(df.iloc[i]["format"]),
        *([str(df.iloc[i]["optimizer"])] if "optimizer" in keys else []),
        df.iloc[i]["_order"]))
    return df.iloc[order].reset_index(drop=True)


def _cells(inc: pd.DataFrame, factors: Mapping[str, Any], format_sort_key) -> pd.DataFrame:
    cols = ["format", "optimizer", *factors, "setting", "n", "crashed", "seeds", "n_duplicates"]
    rows = []
    for (fmt, opt, setting), g in inc.groupby(["format", "optimizer", "setting"], sort=False):
        seeds = g["seed"].dropna().astype(float)
        rows.append({"format": fmt, "optimizer": opt, **{k: g.iloc[0][k] for k in factors}, "setting": setting,
                     "n": len(g), "crashed": int(g["crashed"].sum()),
                     "seeds": sorted(int(s) for s in set(seeds)),
                     "n_duplicates": int(len(seeds) - seeds.nunique()), "_order": g.iloc[0]["_order"]})
    out = pd.DataFrame(rows, columns=cols + ["_order"])
    return _sort_conditions(out, ["optimizer"], format_sort_key).drop(columns="_order")


def paired_seeds(g: pd.DataFrame) -> tuple[list[int], list[int]]:
    """(paired, duplicated): seeds that both optimizers ran exactly once in one (format, setting),
    and seeds run more than once by either optimizer (left out of the pairing, never medianed)."""
    from .scorecard import MANIFOLD, STANDARD
    seeded = g[g["seed"].notna()]
    counts = seeded.groupby(["seed", "optimizer"]).size().unstack(fill_value=0)
    if MANIFOLD not in counts or STANDARD not in counts:
        dup = counts.index[(counts > 1).any(axis=1)] if len(counts) else []
        return [], sorted(int(s) for s in dup)
    both = counts[(counts[MANIFOLD] >= 1) & (counts[STANDARD] >= 1)]
    dup = both.index[(both[MANIFOLD] > 1) | (both[STANDARD] > 1)]
    ok = both.index[(both[MANIFOLD] == 1) & (both[STANDARD] == 1)]
    return sorted(int(s) for s in ok), sorted(int(s) for s in dup)


def _pairs(inc: pd.DataFrame, factors: Mapping[str, Any], format_sort_key) -> pd.DataFrame:
    cols = ["format", *factors, "setting", "n_pairs", "seeds", "duplicated_seeds"]
    rows = []
    for (fmt, setting), g in inc.groupby(["format", "setting"], sort=False):
        ok, dup = paired_seeds(g)
        rows.append({"format": fmt, **{k: g.iloc[0][k] for k in factors}, "setting": setting,
                     "n_pairs": len(ok), "seeds": ok, "duplicated_seeds": dup, "_order": g.iloc[0]["_order"]})
    out = pd.DataFrame(rows, columns=cols + ["_order"])
    return _sort_conditions(out, [], format_sort_key).drop(columns="_order")


def _missing(inc: pd.DataFrame, factors: Mapping[str, list[Any]], cells: pd.DataFrame) -> pd.DataFrame:
    """Conditions of the full crossing (formats x optimizers x factor levels) without a run."""
    from .scorecard import sorted_formats
    cols = ["format", "optimizer", *factors, "setting"]
    if inc.empty:
        return pd.DataFrame(columns=cols)
    present = set(zip(cells["format"], cells["optimizer"], cells["setting"]))
    level_sets = [[]]
    for k, levels in factors.items():
        level_sets = [prev + [(k, v)] for prev in level_sets for v in levels]
    rows = []
    for fmt in sorted_formats(inc["format"]):
        for opt in sorted(set(inc["optimizer"])):
            for lv in level_sets:
                label = setting_label(dict(lv))
                if (fmt, opt, label) not in present:
                    rows.append({"format": fmt, "optimizer": opt, **dict(lv), "setting": label})
    return pd.DataFrame(rows, columns=cols)


def _duplicates(inc: pd.DataFrame, factors: Mapping[str, Any]) -> pd.DataFrame:
    """Same seed twice (or more) in one condition: one row per (condition, seed)."""
    cols = ["format", "optimizer", *factors, "setting", "seed", "n", "run_ids"]
    seeded = inc[inc["seed"].notna()]
    rows = []
    for (fmt, opt, setting, seed), g in seeded.groupby(["format", "optimizer", "setting", "seed"], sort=False):
        if len(g) > 1:
            rows.append({"format": fmt, "optimizer": opt, **{k: g.iloc[0][k] for k in factors}, "setting": setting,
                         "seed": int(seed), "n": len(g), "run_ids": sorted(g["run_id"])})
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["format", "optimizer", "setting", "seed"], kind="stable").reset_index(drop=True)


def _lengths(inc: pd.DataFrame, factors: Mapping[str, Any]) -> pd.DataFrame:
    """Runs compared with each other whose finished runs trained different numbers of steps or
    had different max_steps (failed runs stop early by nature). Scope "format": a (format,
    setting) group, the runs the paired comparison uses; ``budget`` is its shortest finished
    run's steps, where "final" is read for every run of the group (Design.budgets). Scope
    "setting": the formats of one setting, compared in the rankings, differ in length while
    each format's runs agree (flagged, not truncated)."""
    cols = ["scope", "format", *factors, "setting", "steps", "max_steps", "budget", "run_ids"]
    fin = inc[~inc["crashed"].to_numpy()]
    rows = []

    def spread(g: pd.DataFrame) -> tuple[list[int], list[int]]:
        return (sorted({int(s) for s in g["steps"].dropna()}),
                sorted({int(s) for s in pd.Series(g["max_steps"]).dropna()}))

    from .scorecard import format_sort_key
    settings = sorted(dict(zip(fin["setting"], fin["_order"])).items(), key=lambda kv: kv[1])
    for setting, _ in settings:
        group = fin[(fin["setting"] == setting).to_numpy()]
        flagged = False
        for fmt in sorted(set(group["format"]), key=format_sort_key):
            g = group[(group["format"] == fmt).to_numpy()]
            steps, budget = spread(g)
            if len(steps) > 1 or len(budget) > 1:
                flagged = True
                rows.append({"scope": "format", "format": fmt, **{k: g.iloc[0][k] for k in factors},
                             "setting": setting, "steps": steps, "max_steps": budget,
                             "budget": steps[0] if steps else None, "run_ids": sorted(g["run_id"])})
        steps, budget = spread(group)
        if not flagged and (len(steps) > 1 or len(budget) > 1):
            rows.append({"scope": "setting", "format": "", **{k: group.iloc[0][k] for k in factors},
                         "setting": setting, "steps": steps, "max_steps": budget, "budget": None,
                         "run_ids": sorted(group["run_id"])})
    return pd.DataFrame(rows, columns=cols)


def identical_conditions(inc: pd.DataFrame, history_hashes: Mapping[str, str]) -> list[list[tuple[str, str, str]]]:
    """Groups of conditions (format, optimizer, setting) of one optimizer and setting whose runs,
    seed by seed, have bit-identical histories (e.g. E1M6 and E2M5 on the bundled bench)."""
    sig: dict[tuple[str, str, str], tuple] = {}
    for (fmt, opt, setting), g in inc.groupby(["format", "optimizer", "setting"], sort=True):
        hashes = [(float(s) if pd.notna(s) else math.inf, history_hashes.get(r)) for s, r in zip(g["seed"], g["run_id"])]
        if any(h is None for _, h in hashes):
            continue
        sig[(str(fmt), str(opt), str(setting))] = tuple(sorted(hashes))
    groups: dict[tuple, list[tuple[str, str, str]]] = {}
    for cond, s in sig.items():
        groups.setdefault((cond[1], cond[2], s), []).append(cond)
    from .scorecard import format_sort_key
    out = [sorted(g, key=lambda c: format_sort_key(c[0])) for g in groups.values() if len(g) > 1]
    return sorted(out, key=lambda g: (format_sort_key(g[0][0]), g[0][1], g[0][2]))


def _label_keys(settings: Iterable[str]) -> list[str]:
    """Factor names read back from setting labels ('k=v, k2=v2'), in label order."""
    keys: dict[str, None] = {}
    for label in settings:
        for part in str(label).split(", ") if label else []:
            if "=" in part:
                keys.setdefault(part.split("=", 1)[0], None)
    return list(keys)


def design_columns(df: pd.DataFrame, factors: Iterable[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """(run table with ``setting`` and the factor columns, factor names).

    A table that already has them (``Design.study``) is used as it is; else the design is
    inferred from its config_json (or built from the explicit ``factors``). A table without
    config_json (the plan's narrower frames) has no factors: setting "" everywhere."""
    from .scorecard import ensure_columns

    wanted = list(factors) if factors is not None else None
    if "setting" in df:
        names = df.attrs.get("factors")
        names = list(names) if names is not None else _label_keys(df["setting"].dropna())
        if (wanted is None or wanted == names) and all(n in df for n in names):
            return df, names
    df = ensure_columns(df)
    design = infer_design(df, DesignOptions(factors=tuple(wanted)) if wanted is not None else None)
    out = design.study(df)
    out.attrs["factors"] = design.factor_names
    return out, design.factor_names
