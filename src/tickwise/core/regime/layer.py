"""The regime layer: between the feature rows and the predictor, it extends each bar's row with the
regime columns of :mod:`tickwise.core.regime.kernels` (filtered HMM state probabilities, the most probable
filtered state, the change-point run length and change probability).

One recursion serves both modes: :meth:`RegimeLayer.batch` runs it over one instrument's ordered bars
from a fresh state, :meth:`RegimeLayer.step` over the next bar(s) with the instrument's carried
:class:`RegimeState`. Both restart at each IST session's first bar, so live == batch exactly and a
restarted live session rebuilds the state from the day's earlier bars (:meth:`RegimeLayer.replay`).

The HMM is fitted by :func:`fit_regime_layer` on the rows it is given (a walk-forward training window
only, never the bars a model scores) and its states are put in canonical order, by mean log volatility:
state 0 is the calmest, state K-1 the most volatile, in every fold.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from tickwise.core.regime.change_points import change_point_columns, change_point_tables
from tickwise.core.regime.kernels import (
    BOTH_PARTS,
    HMM_PART,
    NO_DAY,
    STATE_DAY,
    diag_gaussian_log_density,
    observations,
    regime_steps,
)
from tickwise.domain.errors import ModelError

# The features the layer reads from each row: the 1m log return and the volatility (NATR, % of price).
REGIME_INPUTS: tuple[str, str] = ("ret_1", "natr_14")
IST_OFFSET_NS = (5 * 3600 + 30 * 60) * 1_000_000_000  # IST has no daylight saving: a fixed offset
DAY_NS = 86_400 * 1_000_000_000
LAYER_FORMAT = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_IST_OFFSET = timedelta(hours=5, minutes=30)
_ONE_DAY = timedelta(days=1)


def session_day(t: datetime) -> int:
    """IST calendar day number of one tz-aware instant (the live path: no pandas per bar); equal to
    :func:`session_days` of the same instant."""
    if t.tzinfo is None:
        raise ValueError("regime layer: bar times must be tz-aware")
    return (t - _EPOCH + _IST_OFFSET) // _ONE_DAY


def session_days(times: pd.DatetimeIndex | Sequence[Any] | np.ndarray) -> np.ndarray:
    """IST calendar day number of each tz-aware instant (the session a bar belongs to)."""
    idx = pd.DatetimeIndex(times)
    if len(idx) and idx.tz is None:
        raise ValueError("regime layer: bar times must be tz-aware")
    ns = idx.as_unit("ns").asi8 if len(idx) else np.empty(0, dtype=np.int64)
    days: np.ndarray = (ns + IST_OFFSET_NS) // DAY_NS
    return days.astype(np.int64)


@dataclass(frozen=True, slots=True)
class ChangePointSpec:
    """Bayesian online change-point detection (Adams & MacKay) on the ATR-scaled 1m return.

    ``hazard``: prior probability of a change at any bar (1 / expected run length in bars);
    ``max_run_length``: run lengths kept (the truncated distribution; memory per instrument is
    ``5 * max_run_length`` floats); ``prior``: Normal-Inverse-Gamma (mu0, kappa0, alpha0, beta0) of a new
    run's returns; ``change_window``: the change probability is P(run length < change_window), the
    posterior probability that the current regime began within the last ``change_window`` bars.
    """

    hazard: float = 1.0 / 60.0
    max_run_length: int = 200
    prior: tuple[float, float, float, float] = (0.0, 1.0, 1.0, 1.0)
    change_window: int = 5

    def __post_init__(self) -> None:
        if not 0.0 < self.hazard < 1.0:
            raise ValueError(f"hazard must be in (0, 1), got {self.hazard}")
        if self.max_run_length < 2:
            raise ValueError(f"max_run_length must be >= 2, got {self.max_run_length}")
        if not 1 <= self.change_window <= self.max_run_length:
            raise ValueError("change_window must be in [1, max_run_length]")
        _, kappa, alpha, beta = self.prior
        if kappa <= 0 or alpha <= 0 or beta <= 0:
            raise ValueError(f"prior kappa, alpha and beta must be positive, got {self.prior}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "hazard": self.hazard,
            "max_run_length": self.max_run_length,
            "prior": list(self.prior),
            "change_window": self.change_window,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChangePointSpec:
        mu, kappa, alpha, beta = (float(v) for v in data["prior"])
        return cls(
            hazard=float(data["hazard"]),
            max_run_length=int(data["max_run_length"]),
            prior=(mu, kappa, alpha, beta),
            change_window=int(data["change_window"]),
        )


@dataclass(frozen=True, slots=True)
class RegimeSpec:
    """How to fit the layer (``regimes:`` in the configuration)."""

    n_states: int = 3
    n_iter: int = 50
    seed: int = 7
    max_fit_rows: int = 100_000  # the most recent sessions of the window, whole sessions
    change_point: ChangePointSpec = field(default_factory=ChangePointSpec)

    def __post_init__(self) -> None:
        if not 2 <= self.n_states <= 8:
            raise ValueError(f"n_states must be in [2, 8], got {self.n_states}")
        if self.n_iter < 1 or self.max_fit_rows < 100:
            raise ValueError("n_iter must be >= 1 and max_fit_rows >= 100")

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_states": self.n_states,
            "n_iter": self.n_iter,
            "seed": self.seed,
            "max_fit_rows": self.max_fit_rows,
            "change_point": self.change_point.to_dict(),
        }


@dataclass(frozen=True)
class GaussianHmm:
    """A fitted Gaussian HMM with diagonal covariances, states in canonical order."""

    startprob: np.ndarray  # (K,)
    transmat: np.ndarray  # (K, K)
    means: np.ndarray  # (K, 2): ATR-scaled return, log NATR
    variances: np.ndarray  # (K, 2)

    def __post_init__(self) -> None:
        k = self.startprob.shape[0]
        shapes = (self.transmat.shape, self.means.shape, self.variances.shape)
        if shapes != ((k, k), (k, 2), (k, 2)):
            raise ModelError(f"regime HMM: inconsistent parameter shapes {shapes} for {k} states")
        if not np.all(self.variances > 0):
            raise ModelError("regime HMM: every variance must be positive")

    @property
    def n_states(self) -> int:
        return int(self.startprob.shape[0])

    def to_dict(self) -> dict[str, Any]:
        # Python's float repr round-trips exactly through JSON: the loaded HMM is bit-identical.
        return {
            "startprob": self.startprob.tolist(),
            "transmat": self.transmat.tolist(),
            "means": self.means.tolist(),
            "variances": self.variances.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GaussianHmm:
        return cls(
            startprob=np.ascontiguousarray(data["startprob"], dtype=np.float64),
            transmat=np.ascontiguousarray(data["transmat"], dtype=np.float64),
            means=np.ascontiguousarray(data["means"], dtype=np.float64),
            variances=np.ascontiguousarray(data["variances"], dtype=np.float64),
        )


@dataclass
class RegimeState:
    """One instrument's carried recursion state (see the kernels' state layout)."""

    hmm_p: np.ndarray
    bo: np.ndarray
    ints: np.ndarray


@dataclass(frozen=True)
class RegimeLayer:
    """A fitted HMM plus the change-point settings: the regime columns of any bar sequence."""

    hmm: GaussianHmm
    change_point: ChangePointSpec = field(default_factory=ChangePointSpec)
    inputs: tuple[str, str] = REGIME_INPUTS
    info: Mapping[str, Any] = field(default_factory=dict)  # how it was fitted (rows, window, log-lik)

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the layer adds, in order."""
        probs = tuple(f"regime_p{j}" for j in range(self.hmm.n_states))
        return (*probs, "regime_state", "cp_run_length", "cp_prob")

    def new_state(self) -> RegimeState:
        r = self.change_point.max_run_length
        ints = np.zeros(3, dtype=np.int64)
        ints[STATE_DAY] = NO_DAY
        return RegimeState(hmm_p=np.zeros(self.hmm.n_states), bo=np.full((5, r), np.nan), ints=ints)

    def step(
        self, state: RegimeState, times: Sequence[Any] | pd.DatetimeIndex, inputs: np.ndarray
    ) -> np.ndarray:
        """The regime columns of the next bar(s) of the instrument whose state is ``state`` (updated).

        ``inputs``: ``(n, 2)`` (or one row) of :attr:`inputs` values, bars in time order."""
        return self.step_days(state, session_days(times), inputs)

    def step_days(self, state: RegimeState, days: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        """:meth:`step` with the bars' session days (:func:`session_day`) given instead of their times."""
        x = np.ascontiguousarray(inputs, dtype=np.float64).reshape(-1, 2)
        days = np.ascontiguousarray(days, dtype=np.int64)
        if len(days) != x.shape[0]:
            raise ValueError(f"regime layer: {len(days)} times for {x.shape[0]} input rows")
        out = np.empty((x.shape[0], len(self.columns)), dtype=np.float64)
        self._steps(state, days, x, out, BOTH_PARTS)
        return out

    def _steps(
        self, state: RegimeState, days: np.ndarray, x: np.ndarray, out: np.ndarray, parts: int
    ) -> None:
        cp = self.change_point
        alphas, ratios = change_point_tables(cp)
        regime_steps(
            days,
            x,
            self.hmm.startprob,
            self.hmm.transmat,
            self.hmm.means,
            self.hmm.variances,
            cp.hazard,
            np.asarray(cp.prior, dtype=np.float64),
            cp.change_window,
            state.hmm_p,
            state.bo,
            state.ints,
            out,
            alphas,
            ratios,
            parts,
        )

    def batch(self, times: Sequence[Any] | pd.DatetimeIndex, inputs: np.ndarray) -> np.ndarray:
        """The regime columns of one instrument's bars (time order) from a fresh state."""
        return self.step(self.new_state(), times, inputs)

    def replay(self, times: Sequence[Any] | pd.DatetimeIndex, inputs: np.ndarray) -> RegimeState:
        """The state after the last of ``times``: only that bar's session matters (the anchor), so the
        bars of earlier days are skipped. Used when a live session opens mid-day or rewinds."""
        days = session_days(times)
        state = self.new_state()
        if len(days):
            keep = days == days[-1]
            idx = pd.DatetimeIndex(times)[keep]
            self.step(state, idx, np.asarray(inputs, dtype=np.float64).reshape(-1, 2)[keep])
        return state

    def frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """The regime columns of a features frame (``instrument_token``, ``time`` and the inputs; any
        order, several instruments): each instrument's bars in time order from a fresh state, returned
        on ``features``' index."""
        missing = [c for c in ("instrument_token", "time", *self.inputs) if c not in features.columns]
        if missing:
            raise ModelError(f"the regime layer needs column(s) the features lack: {', '.join(missing)}")
        out = np.full((len(features), len(self.columns)), np.nan)
        if len(features):
            times = pd.DatetimeIndex(pd.to_datetime(features["time"], utc=True))
            tokens = features["instrument_token"].to_numpy(dtype=np.int64)
            order = np.lexsort((times.asi8, tokens))
            tokens = np.ascontiguousarray(tokens[order])
            x = np.ascontiguousarray(features.loc[:, list(self.inputs)].to_numpy(dtype=np.float64)[order])
            days = session_days(times[order])
            cuts = np.flatnonzero(np.diff(tokens)) + 1
            segments = np.column_stack((np.r_[0, cuts], np.r_[cuts, len(order)])).astype(np.int64)
            # The HMM filter per fold model, the change points once per prior and bars (cached): the two
            # recursions never read each other's state, so the columns are those of :meth:`batch`.
            sorted_out = np.empty_like(out)
            for lo, hi in segments.tolist():
                self._steps(self.new_state(), days[lo:hi], x[lo:hi], sorted_out[lo:hi], HMM_PART)
            k = self.hmm.n_states
            sorted_out[:, k + 1 :] = change_point_columns(self.change_point, days, segments, x)
            out[order] = sorted_out
        return pd.DataFrame(out, index=features.index, columns=list(self.columns))

    def with_columns(self, features: pd.DataFrame) -> pd.DataFrame:
        """``features`` with the regime columns added (replacing any of the same name)."""
        regime = self.frame(features)
        return pd.concat([features.drop(columns=list(self.columns), errors="ignore"), regime], axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": LAYER_FORMAT,
            "inputs": list(self.inputs),
            "hmm": self.hmm.to_dict(),
            "change_point": self.change_point.to_dict(),
            "info": dict(self.info),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegimeLayer:
        if data.get("format") != LAYER_FORMAT:
            raise ModelError(f"unsupported regime layer format {data.get('format')!r}")
        inputs = tuple(str(v) for v in data["inputs"])
        if inputs != REGIME_INPUTS:
            raise ModelError(f"regime layer reads {inputs}, this build observes {REGIME_INPUTS}")
        return cls(
            hmm=GaussianHmm.from_dict(data["hmm"]),
            change_point=ChangePointSpec.from_dict(data["change_point"]),
            info=dict(data.get("info", {})),
        )


def layer_of(regime: Mapping[str, Any] | None) -> RegimeLayer | None:
    """The layer saved with a model (``ModelArtifact.regime``), or None for a model without one."""
    return None if regime is None else RegimeLayer.from_dict(regime)


def fit_observations(features: pd.DataFrame, spec: RegimeSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What :func:`fit_regime_layer` fits the HMM on: the observable bars' observations, ordered by
    session, instrument and time, capped at the most recent ``spec.max_fit_rows`` (whole sessions);
    each sequence's length; each row's session day. ``ModelError`` when there are too few."""
    missing = [c for c in ("instrument_token", "time", *REGIME_INPUTS) if c not in features.columns]
    if missing:
        raise ModelError(f"cannot fit the regime HMM: the features lack {', '.join(missing)}")
    times = pd.DatetimeIndex(pd.to_datetime(features["time"], utc=True))
    days = session_days(times)
    tokens = features["instrument_token"].to_numpy(dtype=np.int64)
    order = np.lexsort((times.asi8, tokens, days))  # by session, then instrument, then time
    obs = observations(np.ascontiguousarray(features.loc[:, list(REGIME_INPUTS)].to_numpy(dtype=np.float64)))
    obs, days, tokens = obs[order], days[order], tokens[order]
    finite = np.isfinite(obs).all(axis=1)
    obs, days, tokens = obs[finite], days[finite], tokens[finite]
    if len(obs) > spec.max_fit_rows:  # the most recent whole sessions
        first_day = days[len(obs) - spec.max_fit_rows]
        keep = days > first_day if np.any(days > first_day) else days == first_day
        obs, days, tokens = obs[keep], days[keep], tokens[keep]
    if len(obs) < 20 * spec.n_states:
        raise ModelError(
            f"cannot fit a {spec.n_states}-state regime HMM on {len(obs)} observable bars "
            f"(need at least {20 * spec.n_states})"
        )
    starts = np.flatnonzero(np.r_[True, (days[1:] != days[:-1]) | (tokens[1:] != tokens[:-1])])
    lengths = np.diff(np.r_[starts, len(obs)])
    return obs, lengths, days


def fit_regime_layer(features: pd.DataFrame, spec: RegimeSpec | None = None) -> RegimeLayer:
    """Fit the Gaussian HMM on ``features`` (``instrument_token``, ``time``, ``ret_1``, ``natr_14``): the
    caller passes the training window's bars only. Each (instrument, session) is one sequence, as the
    filter restarts at each session; unobservable bars are left out, as the filter skips them.

    States are sorted by mean log NATR (state 0 = calm). Deterministic for a given ``spec.seed``.
    ``ModelError`` when there are too few observations to fit.
    """
    spec = spec or RegimeSpec()
    obs, lengths, days = fit_observations(features, spec)
    model, loglik, implementation = _fit_hmm(obs, lengths, spec)
    variances = np.array([np.diag(c) for c in model.covars_], dtype=np.float64)
    rank = np.argsort(model.means_[:, 1], kind="stable")  # canonical: by mean log volatility
    hmm = GaussianHmm(
        startprob=_normalised(model.startprob_[rank]),
        transmat=np.ascontiguousarray([_normalised(r) for r in model.transmat_[np.ix_(rank, rank)]]),
        means=np.ascontiguousarray(model.means_[rank], dtype=np.float64),
        variances=np.ascontiguousarray(variances[rank]),
    )
    info = {
        "rows": len(obs),
        "sequences": len(lengths),
        "log_likelihood": loglik,
        "n_iter": spec.n_iter,
        "seed": spec.seed,
        "implementation": implementation,
        "first_day": str(pd.Timestamp(int(days[0]) * DAY_NS).date()),
        "last_day": str(pd.Timestamp(int(days[-1]) * DAY_NS).date()),
    }
    return RegimeLayer(hmm=hmm, change_point=spec.change_point, info=info)


def _fit_hmm(obs: np.ndarray, lengths: np.ndarray, spec: RegimeSpec) -> tuple[Any, float, str]:
    """hmmlearn's Gaussian HMM fitted by EM on ``obs`` (sequences of ``lengths``): the fitted model, its
    log-likelihood and the forward-backward implementation used.

    Two choices make the fit several times cheaper without changing what it estimates (parameters equal
    to hmmlearn's log-space, multi-threaded fit within about 1e-13, ``test_regime_fit_cost.py``):

    - the **scaled** forward-backward (Rabiner's scaling), the same EM as the log-space one, computed in
      probabilities instead of logarithms (no ``logsumexp`` per bar). Should an observation be so far
      from every state that its probability underflows, hmmlearn raises and the fit is redone in log
      space, as before;
    - **one thread** for the k-means initialisation (scikit-learn's OpenMP Lloyd): on 50,000 rows its
      threads cost more in synchronisation than they save, far more on a busy machine, and a
      multi-threaded Lloyd sums its chunks in an order that varies from run to run; one thread is
      deterministic.
    """
    from threadpoolctl import threadpool_limits

    for implementation in ("scaling", "log"):
        model = _gaussian_hmm_class()(
            n_components=spec.n_states,
            covariance_type="diag",
            n_iter=spec.n_iter,
            random_state=spec.seed,
            min_covar=1e-4,
            implementation=implementation,
        )
        try:
            with threadpool_limits(limits=1), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # hmmlearn's convergence chatter; the log-likelihood is kept
                model.fit(obs, lengths)
                loglik = float(model.score(obs, lengths))
        except ValueError:  # "forward pass failed with underflow": only the log-space pass is safe here
            if implementation == "log":
                raise
            continue
        return model, loglik, implementation
    raise AssertionError("unreachable")  # pragma: no cover


@functools.cache
def _gaussian_hmm_class() -> type[Any]:
    """hmmlearn's ``GaussianHMM`` whose scaled E-step computes the emission probabilities of all the
    sequences in one numpy call per EM iteration, then hands each sequence its rows, instead of one
    call per (instrument, session) sequence (about 40 % of the fit's time, in per-call overhead).

    The same values: each row's probabilities depend on that row alone (elementwise operations and a
    sum over the two observation dimensions), so slicing the whole matrix gives the bits a call on
    the sequence gives; ``test_regime_fit_cost.py`` checks the fitted parameters with ``array_equal``
    against hmmlearn's own class. Imported lazily: the live process never fits an HMM."""
    from hmmlearn.hmm import GaussianHMM

    class BatchedEmissionsHMM(GaussianHMM):  # type: ignore[misc]
        _whole: tuple[np.ndarray, np.ndarray] | None = None

        def _compute_log_likelihood(self, X: np.ndarray) -> np.ndarray:
            if self.covariance_type != "diag" or X.ndim != 2:
                out: np.ndarray = super()._compute_log_likelihood(X)
                return out
            # hmmlearn's own preparation of the covariances and of the constant per state, in numpy.
            covars = np.maximum(self._covars_, np.finfo(float).tiny)
            offset = self.n_features * np.log(2 * np.pi) + np.log(covars).sum(axis=-1)
            x = np.ascontiguousarray(X, dtype=np.float64)
            return diag_gaussian_log_density(x, np.ascontiguousarray(self.means_), covars, offset)

        def _do_estep(self, X: np.ndarray, lengths: Any) -> Any:
            self._whole = (X, super()._compute_likelihood(X)) if self.implementation == "scaling" else None
            try:
                return super()._do_estep(X, lengths)
            finally:
                self._whole = None

        def _compute_likelihood(self, X: np.ndarray) -> np.ndarray:
            if self._whole is not None:
                whole, frameprob = self._whole
                start = _row_offset(whole, X)
                if start is not None:
                    rows: np.ndarray = frameprob[start : start + len(X)]
                    return rows
            out: np.ndarray = super()._compute_likelihood(X)
            return out

    return BatchedEmissionsHMM


def _row_offset(whole: np.ndarray, part: np.ndarray) -> int | None:
    """The first row of ``whole`` that ``part`` is a view of (consecutive whole rows), else None."""
    if part.ndim != 2 or whole.ndim != 2 or part.strides != whole.strides or part.shape[1] != whole.shape[1]:
        return None
    delta = part.__array_interface__["data"][0] - whole.__array_interface__["data"][0]
    row_bytes = whole.strides[0]
    if row_bytes <= 0 or delta % row_bytes:
        return None
    start = delta // row_bytes
    return start if start >= 0 and start + len(part) <= len(whole) else None


def _normalised(p: np.ndarray) -> np.ndarray:
    """A probability vector that sums to one (a state never visited at a session start has 0)."""
    q = np.clip(np.asarray(p, dtype=np.float64), 0.0, None)
    total = q.sum()
    out: np.ndarray = q / total if total > 0 else np.full(len(q), 1.0 / len(q))
    return out
