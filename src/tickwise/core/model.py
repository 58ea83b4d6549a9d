"""The trained model: two LightGBM binary boosters, one per side, and everything needed to use them.

Design (documented choice): labels are produced per side (``labeling.md`` §2), so the model is a pair
of binary classifiers trained on the respective side's events:

- ``long``  predicts P(long label == +1): a long entry at the bar's close hits its profit target first;
- ``short`` predicts P(short label == +1) for a short entry.

A multiclass model on one label column would need a symmetric barrier (which the asymmetric 2.0/1.5
ATR barriers are not) and could not express "both sides look good/bad". The signal generator
(``core.signals``) turns the two probabilities into a direction, a confidence and a size.

An artifact is saved as a directory: ``long.txt`` / ``short.txt`` (LightGBM text models, which round-trip
bit-exactly) plus ``model.json`` (feature list, feature set, label and feature specs, params, metrics).
This module does no I/O except :meth:`ModelArtifact.save` / :meth:`ModelArtifact.load` on a directory
the caller chooses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from tickwise.domain.errors import ModelError

SIDES: tuple[int, int] = (1, -1)
SIDE_NAMES: dict[int, str] = {1: "long", -1: "short"}
ARTIFACT_FORMAT = 1

# Fixed LightGBM settings: determinism and the 2-core budget (labeling.md §10). Tunable parameters
# (learning rate, leaves, regularisation...) come from Optuna and are merged over these.
BASE_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "metric": "binary_logloss",
    "max_bin": 63,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "verbosity": -1,
    "feature_pre_filter": False,
}


def lgb_params(tuned: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """BASE_PARAMS overlaid with ``tuned`` and the seeds (bagging, feature fraction, data sampling)."""
    params = dict(BASE_PARAMS)
    params.update(tuned)
    params["seed"] = seed
    params["bagging_seed"] = seed
    params["feature_fraction_seed"] = seed
    params["data_random_seed"] = seed
    return params


def fit_booster(
    x: np.ndarray,
    y: np.ndarray,
    *,
    params: Mapping[str, Any],
    num_boost_round: int,
    feature_names: list[str],
    weight: np.ndarray | None = None,
    valid: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None,
    early_stopping_rounds: int | None = None,
) -> lgb.Booster:
    """Train one binary booster; with ``valid`` (x, y, weight) and ``early_stopping_rounds``, stop early on it.

    ``valid`` must never be the evaluation fold (early stopping on the test fold inflates scores,
    labeling.md §10): callers carve it out of the training window.
    """
    if len(np.unique(y)) < 2:
        raise ModelError(
            f"cannot train a binary model: every one of the {len(y)} labels is {int(y[0]) if len(y) else '-'}"
        )
    train_set = lgb.Dataset(
        np.ascontiguousarray(x, dtype=np.float64),
        label=y.astype(np.float64),
        weight=weight,
        feature_name=feature_names,
        free_raw_data=True,
        params={"max_bin": params.get("max_bin", 63), "verbosity": -1, "feature_pre_filter": False},
    )
    valid_sets = []
    callbacks: list[Any] = []
    if valid is not None:
        vx, vy, vw = valid
        valid_sets.append(
            lgb.Dataset(
                np.ascontiguousarray(vx, dtype=np.float64),
                label=vy.astype(np.float64),
                weight=vw,
                reference=train_set,
            )
        )
        if early_stopping_rounds:
            callbacks.append(lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False))
    return lgb.train(
        dict(params),
        train_set,
        num_boost_round=num_boost_round,
        valid_sets=valid_sets or None,
        callbacks=callbacks or None,
    )


def feature_set_of(feature_names: list[str] | tuple[str, ...], extra: Mapping[str, Any] | None = None) -> str:
    """A short stable identifier for an ordered feature list (used when the calculator gives none)."""
    payload = json.dumps({"names": list(feature_names), "extra": dict(extra or {})}, sort_keys=True)
    return "fs-" + hashlib.sha256(payload.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class ModelArtifact:
    """A trained model bundle: the two side boosters plus what is needed to use and audit them."""

    version: str
    boosters: Mapping[int, lgb.Booster]
    feature_names: tuple[str, ...]
    feature_set: str
    params: Mapping[str, Any] = field(default_factory=dict)
    label_spec: Mapping[str, Any] = field(default_factory=dict)
    feature_spec: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    trained_from: datetime | None = None
    trained_to: datetime | None = None
    timeframe: str = "1m"

    def __post_init__(self) -> None:
        missing = [SIDE_NAMES[s] for s in SIDES if s not in self.boosters]
        if missing:
            raise ModelError(f"model {self.version} has no {', '.join(missing)} booster")
        for side, booster in self.boosters.items():
            names = tuple(booster.feature_name())
            if names != self.feature_names:
                raise ModelError(
                    f"model {self.version}: the {SIDE_NAMES[side]} booster was trained on a different feature list"
                )

    def metadata(self) -> dict[str, Any]:
        """JSON-serialisable description (``model.json``)."""
        return {
            "format": ARTIFACT_FORMAT,
            "version": self.version,
            "feature_names": list(self.feature_names),
            "feature_set": self.feature_set,
            "params": _jsonable(self.params),
            "label_spec": _jsonable(self.label_spec),
            "feature_spec": _jsonable(self.feature_spec),
            "metrics": _jsonable(self.metrics),
            "trained_from": self.trained_from.isoformat() if self.trained_from else None,
            "trained_to": self.trained_to.isoformat() if self.trained_to else None,
            "timeframe": self.timeframe,
            "lightgbm": lgb.__version__,
        }

    def save(self, directory: Path) -> Path:
        """Write the bundle into ``directory`` (created); the metadata file is written last, so a
        directory without ``model.json`` is an interrupted save and :meth:`load` refuses it."""
        directory.mkdir(parents=True, exist_ok=True)
        for side, booster in self.boosters.items():
            booster.save_model(str(directory / f"{SIDE_NAMES[side]}.txt"))
        tmp = directory / "model.json.tmp"
        tmp.write_text(json.dumps(self.metadata(), indent=2, sort_keys=True))
        tmp.replace(directory / "model.json")
        return directory

    @classmethod
    def load(cls, directory: Path) -> ModelArtifact:
        meta_path = directory / "model.json"
        if not meta_path.is_file():
            raise ModelError(f"no model bundle in {directory} (model.json is missing)")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != ARTIFACT_FORMAT:
            raise ModelError(f"{meta_path}: unsupported model bundle format {meta.get('format')!r}")
        boosters = {}
        for side in SIDES:
            path = directory / f"{SIDE_NAMES[side]}.txt"
            if not path.is_file():
                raise ModelError(f"model bundle {directory} has no {path.name}")
            boosters[side] = lgb.Booster(model_file=str(path))
        return cls(
            version=meta["version"],
            boosters=boosters,
            feature_names=tuple(meta["feature_names"]),
            feature_set=meta["feature_set"],
            params=meta.get("params", {}),
            label_spec=meta.get("label_spec", {}),
            feature_spec=meta.get("feature_spec", {}),
            metrics=meta.get("metrics", {}),
            trained_from=_parse_dt(meta.get("trained_from")),
            trained_to=_parse_dt(meta.get("trained_to")),
            timeframe=meta.get("timeframe", "1m"),
        )


def _parse_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON with numpy scalars and datetimes converted."""
    return json.loads(json.dumps(value, default=_default))


def _default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)
