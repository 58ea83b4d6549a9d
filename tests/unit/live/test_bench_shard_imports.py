"""The bench's live shard (the process that runs the engine in `tickwise bench live`) scores its production
-shape model compiled without ever importing LightGBM, scikit-learn or scipy's own libraries.

The model is loaded as a live shard loads a bundle: its text and the digest of LightGBM's own
probabilities on the probe rows, recorded by the process that trained it (``core/text_booster.py``).
The compiled walk is checked against that record; LightGBM is imported only when the record is missing
or does not match, and then the walk is checked against LightGBM itself, as before.

scipy: numba imports ``scipy.linalg``'s BLAS bindings whenever its CPU target starts (it binds
``np.dot`` and friends to them), in every process that runs a kernel. That part is numba's, measured
in docs/benchmarks.md (about 15 MB), and is all of scipy a shard may hold: no ``scipy.stats``,
``scipy.signal``, ``scipy.sparse`` or ``scipy.optimize``, which LightGBM, scikit-learn and the simulated
market bring.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("lightgbm", "sklearn", "hmmlearn", "optuna", "mlflow", "dask", "sqlalchemy", "alembic", "matplotlib")

SHARD = """
import json, sys
import tickwise.bench.live as live
if {tamper!r}:
    loaded = live._loaded_artifact

    def tampered(calc, files):
        # The record of one side's LightGBM probabilities, one hex digit changed: not LightGBM's any more.
        strings = dict(files.model_strings)
        text, probe = strings[1]
        strings[1] = (text, ("1" if probe[0] != "1" else "2") + probe[1:])
        return loaded(calc, live.dataclasses.replace(files, model_strings=strings))

    live._loaded_artifact = tampered
figures = live.run_live_bench(instruments=3, minutes=1)
print(json.dumps({{
    "predictor": figures["predictor"],
    "bars": figures["bars"],
    "signals": figures["signals"],
    "errors": figures["engine_errors"],
    "modules": sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r} + ("scipy",)),
}}))
"""

NUMBA_ALONE = """
import json, sys
from numba import njit
njit(lambda x: x + 1)(1)  # a kernel's first call starts numba's CPU target
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "scipy")))
"""


def _run(code: str) -> object:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _shard(*, tamper: bool) -> dict[str, object]:
    report = _run(SHARD.format(tamper=tamper, heavy=HEAVY))
    assert isinstance(report, dict)
    return report


def test_a_live_shard_with_compiled_models_imports_no_lightgbm_sklearn_or_scipy() -> None:
    shard = _shard(tamper=False)
    numba_scipy = _run(NUMBA_ALONE)
    assert isinstance(numba_scipy, list) and "scipy.linalg.cython_blas" in numba_scipy
    assert shard["predictor"] == "compiled"
    assert shard["bars"] == shard["signals"] == 3 and shard["errors"] == 0
    modules = shard["modules"]
    assert isinstance(modules, list)
    assert [m for m in modules if not m.startswith("scipy")] == []
    # The scipy a shard holds is what numba's CPU target imports by itself, nothing more.
    assert sorted(set(modules) - set(numba_scipy)) == []


def test_a_tampered_probe_record_is_not_trusted_and_lightgbm_checks_the_compiled_trees() -> None:
    shard = _shard(tamper=True)
    modules = shard["modules"]
    assert isinstance(modules, list) and "lightgbm" in modules  # the record failed: LightGBM was asked
    # The trees themselves are LightGBM's: checked against LightGBM, the compiled walk still scores,
    # and the replay gives the same bars and signals.
    assert shard["predictor"] == "compiled"
    assert shard["bars"] == shard["signals"] == 3 and shard["errors"] == 0
