"""The ensemble: one signal per bar of its timeframe from the signal timeframes' models (the members).

Point in time. The ensemble bar opened at ``t`` closes at ``t + timeframe``; for each member it takes the
member's **latest** probabilities available at that close: the member bar of the same instrument and
IST session with the greatest ``available_at <= close`` (a 1m member gives its ``t + 4m`` bar for a 5m
bar, a 15m member the last 15m bar that had closed). A bar some member has nothing for yet (warm-up, or
the first bars of a session before the member's first bar of the day closed) gets no ensemble signal.
:func:`member_inputs` applies the rule to whole histories; :class:`LatestProbabilities` applies it bar
by bar in live: the same rule, so the same inputs.

The model. A stacked logistic layer per side: ``p_side = 1 / (1 + exp(-(b + sum_j w_j * x_j)))`` where
``x`` holds the logits of every member's long and short probability (clipped to ``[1e-6, 1 - 1e-6]``).
The sum runs column by column in a fixed order (not a BLAS dot product, whose summation order may depend
on the number of rows), so scoring one bar live gives the bits of scoring a whole history. It is fitted
(scikit-learn, L2, lbfgs) on the members' **out-of-sample** probabilities and the ensemble timeframe's
triple-barrier labels, walk-forward like the members (``pipelines/historical/ensemble.py``), and the
signal is the members' signal rule (``SignalGenerator``) applied to the two ensemble probabilities.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from tickwise.core.signals import SignalGenerator
from tickwise.core.walk_forward import WalkForwardSpec
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

EPS = 1e-6
ENSEMBLE_FEATURE_SET = "ensemble"  # the feature_set of an ensemble signal row
SIDE_COLUMNS = ("p_long", "p_short")
# A member's scored bars: one row per ready bar (model version, its two probabilities).
MEMBER_COLUMNS = ("instrument_token", "time", "available_at", "model_version", "p_long", "p_short")


@dataclass(frozen=True, slots=True)
class EnsembleSpec:
    """What the ensemble combines and how it is refitted (from ``ensemble:`` in the configuration)."""

    timeframe: Timeframe = Timeframe.M5
    schedule: WalkForwardSpec = field(
        default_factory=lambda: WalkForwardSpec(refit_every=5, min_train_sessions=5, min_train_events=200)
    )
    regularization: float = 1.0

    def __post_init__(self) -> None:
        if self.regularization <= 0:
            raise ValueError(f"regularization must be > 0, got {self.regularization}")


def input_names(members: Sequence[str]) -> tuple[str, ...]:
    """The stacked layer's inputs, in order: ``<timeframe>_p_long``, ``<timeframe>_p_short`` per member."""
    return tuple(f"{m}_{c}" for m in members for c in SIDE_COLUMNS)


def logits(p: np.ndarray) -> np.ndarray:
    """``log(p / (1 - p))`` of probabilities clipped to ``[EPS, 1 - EPS]`` (elementwise)."""
    q = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    out: np.ndarray = np.log(q) - np.log1p(-q)
    return out


@dataclass(frozen=True)
class StackedLogistic:
    """Two logistic layers (long, short) over the members' probability logits."""

    members: tuple[str, ...]  # member timeframes, in input order
    long_coef: tuple[float, ...]
    long_intercept: float
    short_coef: tuple[float, ...]
    short_intercept: float

    def __post_init__(self) -> None:
        n = 2 * len(self.members)
        if len(self.long_coef) != n or len(self.short_coef) != n:
            raise ValueError(f"{len(self.members)} members need {n} coefficients per side")

    @property
    def inputs(self) -> tuple[str, ...]:
        return input_names(self.members)

    def predict(self, probs: np.ndarray) -> np.ndarray:
        """(n, 2) ensemble (long, short) probabilities of ``probs`` (n, 2 * members: member probabilities
        in :attr:`inputs` order). Rows are independent: one row alone gives the same bits."""
        x = logits(np.asarray(probs, dtype=np.float64).reshape(-1, len(self.inputs)))
        out = np.empty((len(x), 2), dtype=np.float64)
        for k, (coef, intercept) in enumerate(
            ((self.long_coef, self.long_intercept), (self.short_coef, self.short_intercept))
        ):
            z = np.full(len(x), intercept, dtype=np.float64)
            for j, w in enumerate(coef):  # fixed column order: no BLAS reduction whose order varies
                z = z + x[:, j] * w
            out[:, k] = 1.0 / (1.0 + np.exp(-z))
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "members": list(self.members),
            "long_coef": list(self.long_coef),
            "long_intercept": self.long_intercept,
            "short_coef": list(self.short_coef),
            "short_intercept": self.short_intercept,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> StackedLogistic:
        def floats(key: str) -> tuple[float, ...]:
            value = data.get(key)
            if not isinstance(value, list):
                raise ValueError(f"ensemble parameters lack the list {key!r}")
            return tuple(float(v) for v in value)

        members = data.get("members")
        if not isinstance(members, list):
            raise ValueError("ensemble parameters lack the member list")
        return cls(
            members=tuple(str(m) for m in members),
            long_coef=floats("long_coef"),
            long_intercept=float(str(data.get("long_intercept"))),
            short_coef=floats("short_coef"),
            short_intercept=float(str(data.get("short_intercept"))),
        )


def fit_stacked(
    members: Sequence[str], probs: np.ndarray, y_long: np.ndarray, y_short: np.ndarray, regularization: float
) -> StackedLogistic | None:
    """Fit both sides on member probabilities ``probs`` (n, 2 * members) and 0/1 outcomes; None when a
    side's outcomes hold one class only (nothing to learn from)."""
    from sklearn.linear_model import LogisticRegression

    x = logits(probs)
    fitted: list[tuple[tuple[float, ...], float]] = []
    for y in (np.asarray(y_long), np.asarray(y_short)):
        if len(np.unique(y)) < 2:
            return None
        model = LogisticRegression(C=regularization, solver="lbfgs", max_iter=1000)
        model.fit(x, y.astype(np.int64))
        fitted.append((tuple(float(v) for v in model.coef_[0]), float(model.intercept_[0])))
    (lc, li), (sc, si) = fitted
    return StackedLogistic(tuple(members), lc, li, sc, si)


def _session(times: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    idx = pd.DatetimeIndex(times).tz_convert(IST)
    out: np.ndarray = idx.normalize().tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return out


def member_inputs(bars: pd.DataFrame, members: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """For every ensemble bar (``instrument_token``, ``time``, ``available_at`` = its close), each
    member's latest probabilities available at the close in the same session (module docstring).

    ``members``: member timeframe -> its scored bars (:data:`MEMBER_COLUMNS`). Returns ``bars``' key
    columns plus ``<m>_p_long``, ``<m>_p_short``, ``<m>_version``, ``<m>_time`` per member (NaN / None
    where the member has nothing yet) and ``ready`` (every member present).
    """
    out = bars.loc[:, ["instrument_token", "time", "available_at"]].copy()
    out["time"] = pd.to_datetime(out["time"], utc=True)
    out["available_at"] = pd.to_datetime(out["available_at"], utc=True)
    out["_row"] = np.arange(len(out))
    out["_session"] = _session(out["time"])
    ready = np.ones(len(out), dtype=bool)
    for name, frame in members.items():
        right = frame.loc[:, list(MEMBER_COLUMNS)].rename(
            columns={
                "time": f"{name}_time",
                "available_at": "_member_at",
                "model_version": f"{name}_version",
                "p_long": f"{name}_p_long",
                "p_short": f"{name}_p_short",
            }
        )
        right["_member_at"] = pd.to_datetime(right["_member_at"], utc=True)
        right[f"{name}_time"] = pd.to_datetime(right[f"{name}_time"], utc=True)
        right["_member_session"] = _session(right[f"{name}_time"])
        right = right.sort_values("_member_at", kind="mergesort")
        left = out.sort_values("available_at", kind="mergesort")
        joined = pd.merge_asof(
            left,
            right,
            left_on="available_at",
            right_on="_member_at",
            by="instrument_token",
            direction="backward",
            allow_exact_matches=True,
        ).sort_values("_row", kind="mergesort")
        same = joined["_member_session"].to_numpy() == joined["_session"].to_numpy()
        present = same & joined[f"{name}_p_long"].notna().to_numpy()
        for col in (f"{name}_p_long", f"{name}_p_short"):
            out[col] = np.where(present, joined[col].to_numpy(dtype=np.float64), np.nan)
        out[f"{name}_version"] = np.where(present, joined[f"{name}_version"].to_numpy(dtype=object), None)
        out[f"{name}_time"] = joined[f"{name}_time"].where(present).to_numpy()
        ready &= present
    out["ready"] = ready
    return out.drop(columns=["_row", "_session"]).reset_index(drop=True)


@dataclass(frozen=True, slots=True)
class MemberScore:
    """One member bar's probabilities, as live keeps them for the ensemble."""

    time: datetime  # the member bar's open
    available_at: datetime  # its close
    model_version: str
    p_long: float
    p_short: float


class LatestProbabilities:
    """Live: each member's recent scored bars per instrument, and the latest at an ensemble bar's close
    (the rule of :func:`member_inputs`, one bar at a time)."""

    def __init__(self, members: Sequence[str], keep: int = 64) -> None:
        self.members = tuple(members)
        self._keep = keep
        self._scores: dict[tuple[str, int], deque[MemberScore]] = {}

    def add(self, member: str, token: int, score: MemberScore) -> None:
        key = (member, token)
        scores = self._scores.get(key)
        if scores is None:
            scores = self._scores[key] = deque(maxlen=self._keep)
        while scores and scores[-1].available_at >= score.available_at:
            scores.pop()  # a corrected (replayed) bar replaces what was scored from it on
        scores.append(score)

    def at(self, token: int, bar_time: datetime, close: datetime) -> list[MemberScore] | None:
        """Each member's latest score available at ``close`` in ``bar_time``'s session, or None."""
        day = bar_time.astimezone(IST).date()
        out: list[MemberScore] = []
        for member in self.members:
            found = None
            for score in reversed(self._scores.get((member, token), ())):
                if score.available_at <= close:
                    found = score
                    break
            if found is None or found.time.astimezone(IST).date() != day:
                return None
            out.append(found)
        return out


def ensemble_generator(
    label_spec: Mapping[str, object], *, threshold: float, kelly_fraction: float, max_position: float
) -> SignalGenerator:
    """The members' signal rule on the ensemble's two probabilities (both modes build it here): the
    configured threshold and sizing, payoff k_pt / k_sl, no regime filter (the layer reads no market
    feature)."""
    k_pt = float(str(label_spec.get("k_pt", 2.0)))
    k_sl = float(str(label_spec.get("k_sl", 1.5)))
    return SignalGenerator(
        threshold=threshold, kelly_fraction=kelly_fraction, max_position=max_position, payoff=k_pt / k_sl
    )
