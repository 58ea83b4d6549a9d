"""A saved LightGBM booster held as its text model: scored without importing LightGBM when it can be.

A live shard scores with the compiled tree evaluator (:mod:`tickwise.core.tree_eval`), which needs the
model's text, not a ``lightgbm.Booster``. Importing LightGBM costs a live process about 60 MB resident
(it imports scikit-learn and ``scipy.stats`` at import, ``lightgbm/compat.py``), so a model loaded from
its bundle is a :class:`TextBooster`: the text, read as LightGBM would read it, and a LightGBM booster
built (and LightGBM imported) only when something asks for LightGBM itself (:meth:`TextBooster.booster`:
training, importance, a model the compiled evaluator cannot reproduce).

The compiled form is used only when it reproduces LightGBM bit for bit on the probe rows
(:func:`tickwise.core.tree_eval.probe_rows`). A bundle saved by this version records LightGBM's own
probabilities on those rows (their SHA-256, :func:`probe_digest`, in ``model.json``), computed by the
process that saved the model (which had LightGBM loaded to train it): loading compares the compiled
form's probabilities with that record and imports nothing. A bundle without the record (saved before
it existed), or whose record does not match, is checked against LightGBM as before
(:func:`tickwise.core.tree_eval.compile_booster`), which imports it.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
from numpy.typing import NDArray

from tickwise.core.tree_eval import (
    CompiledBooster,
    UnsupportedModel,
    compile_booster,
    parse_model,
    probe_rows,
)

if TYPE_CHECKING:
    import lightgbm as lgb


def probe_digest(probabilities: NDArray[np.float64]) -> str:
    """SHA-256 of the probe rows' probabilities as float64 bytes: equal digests, equal bits."""
    return hashlib.sha256(np.ascontiguousarray(probabilities, dtype=np.float64).tobytes()).hexdigest()


def lightgbm_probe_digest(booster: AnyBooster) -> str | None:
    """The digest of LightGBM's own probabilities of ``booster`` on its probe rows (LightGBM is imported
    to compute it unless a :class:`TextBooster` already carries it), or None for a model the compiled
    evaluator does not read (it is then always scored by LightGBM)."""
    if isinstance(booster, TextBooster) and booster.probe is not None:
        return booster.probe
    text = booster.model_to_string()
    try:
        model = parse_model(text)
    except (UnsupportedModel, KeyError, ValueError):
        return None
    lgb_booster = booster.booster() if isinstance(booster, TextBooster) else booster
    want = lgb_booster.predict(probe_rows(model), num_threads=1)
    return probe_digest(np.asarray(want, dtype=np.float64))


class TextBooster:
    """One LightGBM text model (``Booster.model_to_string()``), with the part of ``lightgbm.Booster``'s
    API the scoring code reads; ``probe`` is the recorded :func:`probe_digest` of LightGBM's
    probabilities on the model's probe rows, or None."""

    def __init__(self, text: str, probe: str | None = None) -> None:
        self.text = text
        self.probe = probe
        self._header = _header(text)
        self._booster: lgb.Booster | None = None

    def model_to_string(self) -> str:
        return self.text

    def feature_name(self) -> list[str]:
        return self._header.get("feature_names", "").split()

    def num_feature(self) -> int:
        return int(self._header.get("max_feature_idx", "-1")) + 1

    def num_trees(self) -> int:
        return self.text.count("\nTree=")

    def booster(self) -> lgb.Booster:
        """The LightGBM booster of this text (LightGBM is imported here, once)."""
        if self._booster is None:
            import lightgbm as lgb

            self._booster = lgb.Booster(model_str=self.text)
        return self._booster

    def predict(self, data: NDArray[np.float64], num_threads: int = 1) -> NDArray[np.float64]:
        """LightGBM's own prediction (imports LightGBM); the compiled form is :meth:`compiled`."""
        return np.asarray(self.booster().predict(data, num_threads=num_threads), dtype=np.float64)

    def feature_importance(self, importance_type: str = "split") -> NDArray[np.float64]:
        return np.asarray(
            self.booster().feature_importance(importance_type=importance_type), dtype=np.float64
        )

    def compiled(self) -> CompiledBooster:
        """The compiled form, checked bit-identical to LightGBM: against the recorded probe digest
        without LightGBM, else (no record, or a record it does not match) against LightGBM itself.
        :class:`UnsupportedModel` when it cannot be."""
        model = parse_model(self.text)
        if model.n_features != self.num_feature():
            raise UnsupportedModel(
                f"model string has {model.n_features} features, header {self.num_feature()}"
            )
        if self.probe is not None and probe_digest(model.predict(probe_rows(model))) == self.probe:
            return model
        return compile_booster(self.booster())


def _header(text: str) -> dict[str, str]:
    head: dict[str, str] = {}
    for line in text.partition("\nTree=")[0].splitlines():
        key, sep, value = line.partition("=")
        if sep:
            head[key.strip()] = value.strip()
    return head


if TYPE_CHECKING:
    AnyBooster: TypeAlias = lgb.Booster | TextBooster
