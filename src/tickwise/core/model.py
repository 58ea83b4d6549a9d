"""The trained model: two LightGBM binary boosters, one per side, and everything needed to use them.

Design (documented choice): labels are produced per side (``labeling.md`` §2), so the model is a pair
of binary classifiers trained on the respective side's events:

- ``long``  predicts P(long label == +1): a long entry at the bar's close hits its profit target first;
- ``short`` predicts P(short label == +1) for a short entry.

A multiclass model on one label column would need a symmetric barrier (which the asymmetric 2.0/1.5
ATR barriers are not) and could not express "both sides look good/bad". The signal generator
(``core.signals``) turns the two probabilities into a direction, a confidence and a size.

An artifact is a bundle of named files: ``long.txt`` / ``short.txt`` (LightGBM text models, which
round-trip bit-exactly) plus ``model.json`` (feature list, feature set, label and feature specs, params,
metrics). This module only serialises (:meth:`ModelArtifact.to_files` / :meth:`ModelArtifact.from_files`);
where the files live is the ``ports.ModelStore``'s business (``adapters.local`` keeps a directory per version).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tickwise.core.meta_model import MetaModel
from tickwise.core.text_booster import TextBooster, lightgbm_probe_digest
from tickwise.domain.errors import ModelError

if TYPE_CHECKING:
    # LightGBM is imported where a fit or a save happens, never by loading a bundle to score it: a live
    # shard scores with the compiled trees and would carry LightGBM's ~60 MB (it imports scikit-learn
    # and scipy.stats) for nothing (core/text_booster.py).
    import lightgbm as lgb

    from tickwise.core.text_booster import AnyBooster

SIDES: tuple[int, int] = (1, -1)
SIDE_NAMES: dict[int, str] = {1: "long", -1: "short"}
ARTIFACT_FORMAT = 1
METADATA_FILE = "model.json"
REGIME_FILE = "regime.json"  # the fitted regime layer (core.regime), when the model has one

# Fixed LightGBM settings: determinism and the 2-core budget (labeling.md §10). Tunable parameters
# (learning rate, leaves, regularisation...) come from Optuna and are merged over these.
# A LightGBM parameter value; parameter dicts travel through tuning, the bundle and MLflow.
ParamValue = float | int | str | bool
LgbParams = dict[str, ParamValue]

BASE_PARAMS: LgbParams = {
    "objective": "binary",
    "metric": "binary_logloss",
    "max_bin": 63,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "verbosity": -1,
    "feature_pre_filter": False,
}


_ONE_THREAD = [False]


def one_lightgbm_thread() -> None:
    """Cap every LightGBM call of this process at one OpenMP thread (``LGBM_SetMaxThreads(1)``).

    LightGBM keeps its thread count in a process-wide global that each call's parameters set
    (``num_threads``; a Dataset built without it resets it to every core), sizes per-thread buffers by
    it in one place and runs a parallel region sized by it in another. Two threads of one process that
    use LightGBM at once (``tickwise historical`` fits the champion and the walk-forward fold models
    side by side) can change it under each other mid-call: the test suite crashed with a segmentation
    fault in exactly that state (one thread in ``LGBM_DatasetSetField``, the other in
    ``LGBM_BoosterCreate``), and two threads building Datasets and training reproduced it. Every fit
    asks for one thread already (``BASE_PARAMS``), so the cap changes no model (the golden tests); it
    stops a Dataset's binning from widening the count under another thread's fit. Idempotent.
    """
    if _ONE_THREAD[0]:
        return
    import ctypes

    from lightgbm import basic  # the C API has the cap; the Python package does not wrap it

    basic._safe_call(basic._LIB.LGBM_SetMaxThreads(ctypes.c_int(1)))  # type: ignore[attr-defined]
    _ONE_THREAD[0] = True


def lgb_params(tuned: Mapping[str, ParamValue], seed: int) -> LgbParams:
    """BASE_PARAMS overlaid with ``tuned`` and the seeds (bagging, feature fraction, data sampling)."""
    params = dict(BASE_PARAMS)
    params.update(tuned)
    params["seed"] = seed
    params["bagging_seed"] = seed
    params["feature_fraction_seed"] = seed
    params["data_random_seed"] = seed
    return params


def binned_dataset(x: np.ndarray, feature_names: list[str], max_bin: ParamValue = 63) -> lgb.Dataset:
    """An (as yet unconstructed) LightGBM training Dataset of ``x``: LightGBM bins it on first use.

    The labels and weights are set by :func:`fit_booster` (as LightGBM itself sets them right after
    binning), so one binned Dataset serves any labels and weights of the same rows (:class:`BinnedRows`).
    Only the binning parameters must not change between its uses; LightGBM checks that itself
    (``LGBM_DatasetUpdateParamChecking``) and raises rather than train on stale bins.
    """
    import lightgbm as lgb

    one_lightgbm_thread()
    return lgb.Dataset(
        np.ascontiguousarray(x, dtype=np.float64),
        feature_name=feature_names,
        free_raw_data=True,
        # feature_pre_filter off: the bins then do not depend on min_data_in_leaf, which Optuna varies
        # (LightGBM refuses to change min_data_in_leaf on a Dataset binned with the pre-filter on).
        params={"max_bin": max_bin, "verbosity": -1, "feature_pre_filter": False},
    )


def _set_targets(data: lgb.Dataset, y: np.ndarray, weight: np.ndarray | None) -> None:
    """Labels and weights of a (possibly already binned and used) Dataset, replacing the previous ones."""
    data.set_label(y.astype(np.float64))
    if weight is None or np.all(weight == 1):
        # lgb's set_weight(None) keeps a binned Dataset's old weights: clear them explicitly.
        if data._handle is not None:  # binned already (lgb has no public way to ask)
            data.set_field("weight", None)
        data.weight = None
    else:
        data.set_weight(weight)


def fit_booster(
    x: np.ndarray | lgb.Dataset,
    y: np.ndarray,
    *,
    params: Mapping[str, ParamValue],
    num_boost_round: int,
    feature_names: list[str],
    weight: np.ndarray | None = None,
    valid: tuple[np.ndarray | lgb.Dataset, np.ndarray, np.ndarray | None] | None = None,
    early_stopping_rounds: int | None = None,
) -> lgb.Booster:
    """Train one binary booster; with ``valid`` (x, y, weight) and ``early_stopping_rounds``, stop early on it.

    ``x`` (and the validation ``x``) may be a Dataset of :func:`binned_dataset` already binned by an
    earlier fit of the same rows: its labels and weights are replaced and the bins reused, which trains
    the same booster as binning afresh (tested) without the binning cost. ``valid`` must never be the
    evaluation fold (early stopping on the test fold inflates scores, labeling.md §10): callers carve it
    out of the training window.
    """
    import lightgbm as lgb

    one_lightgbm_thread()
    if len(np.unique(y)) < 2:
        raise ModelError(
            f"cannot train a binary model: every one of the {len(y)} labels is {int(y[0]) if len(y) else '-'}"
        )
    train_set = (
        x if isinstance(x, lgb.Dataset) else binned_dataset(x, feature_names, params.get("max_bin", 63))
    )
    _set_targets(train_set, y, weight)
    valid_sets = []
    callbacks: list[Any] = []
    if valid is not None:
        vx, vy, vw = valid
        valid_set = (
            vx
            if isinstance(vx, lgb.Dataset)
            else lgb.Dataset(np.ascontiguousarray(vx, dtype=np.float64), reference=train_set)
        )
        _set_targets(valid_set, vy, vw)
        valid_sets.append(valid_set)
        if early_stopping_rounds:
            callbacks.append(lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False))
    return lgb.train(
        dict(params),
        train_set,
        num_boost_round=num_boost_round,
        valid_sets=valid_sets or None,
        callbacks=callbacks or None,
    )


@dataclass(frozen=True)
class ModelArtifact:
    """A trained model bundle: the two side boosters plus what is needed to use and audit them."""

    version: str
    # lightgbm.Booster when trained in this process; TextBooster when loaded from a bundle
    boosters: Mapping[int, AnyBooster]
    feature_names: tuple[str, ...]
    feature_set: str
    params: Mapping[str, Any] = field(default_factory=dict)
    label_spec: Mapping[str, Any] = field(default_factory=dict)
    feature_spec: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    trained_from: datetime | None = None
    trained_to: datetime | None = None
    timeframe: str = "1m"
    # The meta-labeling model (core.meta_model), saved as meta.txt/meta.json; None: sized without it.
    meta: MetaModel | None = None
    # The regime layer fitted on the model's training window (``core.regime.RegimeLayer.to_dict``), or None.
    regime: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.meta is not None and self.meta.feature_names != self.feature_names:
            raise ModelError(f"model {self.version}: the meta model was trained after other features")
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
        """JSON-serialisable description (``model.json``).

        ``lightgbm_probe``: per booster (``long``, ``short``, ``meta``), the digest of LightGBM's own
        probabilities on its probe rows, so that a process loading the bundle checks the compiled trees
        against LightGBM without importing it (core/text_booster.py); a booster the compiled evaluator
        does not read has none.
        """
        import lightgbm as lgb

        probes = {SIDE_NAMES[side]: lightgbm_probe_digest(b) for side, b in self.boosters.items()}
        if self.meta is not None:
            probes["meta"] = lightgbm_probe_digest(self.meta.booster)
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
            "regime": self.regime is not None,
            "lightgbm": lgb.__version__,
            "lightgbm_probe": {k: v for k, v in sorted(probes.items()) if v is not None},
        }

    def to_files(self) -> dict[str, bytes]:
        """The bundle as named files: ``long.txt`` / ``short.txt`` (LightGBM text models, which
        round-trip bit-exactly) and ``model.json`` (:meth:`metadata`). A ``ports.ModelStore`` keeps them;
        this is serialisation only, no I/O."""
        files = {
            f"{SIDE_NAMES[side]}.txt": booster.model_to_string().encode()
            for side, booster in self.boosters.items()
        }
        files[METADATA_FILE] = json.dumps(self.metadata(), indent=2, sort_keys=True).encode()
        if self.meta is not None:
            files.update(self.meta.to_files())
        if self.regime is not None:
            files[REGIME_FILE] = json.dumps(self.regime, sort_keys=True).encode()
        return files

    @classmethod
    def from_files(cls, files: Mapping[str, bytes], *, where: str = "the bundle") -> ModelArtifact:
        """Rebuild an artifact from :meth:`to_files` output; ``ModelError`` naming ``where`` when a file is
        missing (an interrupted save) or the format is unknown."""
        if METADATA_FILE not in files:
            raise ModelError(f"no model bundle in {where} ({METADATA_FILE} is missing)")
        meta = json.loads(files[METADATA_FILE])
        if meta.get("format") != ARTIFACT_FORMAT:
            raise ModelError(f"{where}: unsupported model bundle format {meta.get('format')!r}")
        if meta.get("regime") and REGIME_FILE not in files:
            raise ModelError(f"model bundle {where} has a regime layer but no {REGIME_FILE}")
        probes = meta.get("lightgbm_probe") or {}
        boosters: dict[int, AnyBooster] = {}
        for side in SIDES:
            name = f"{SIDE_NAMES[side]}.txt"
            if name not in files:
                raise ModelError(f"model bundle {where} has no {name}")
            # The text, not a lightgbm.Booster: scoring compiled needs no LightGBM (module doc).
            boosters[side] = TextBooster(files[name].decode(), probes.get(SIDE_NAMES[side]))
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
            meta=MetaModel.from_files(files, probe=probes.get("meta")),
            regime=json.loads(files[REGIME_FILE]) if REGIME_FILE in files else None,
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
