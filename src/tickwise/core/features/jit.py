"""``njit_no_nrt``: numba's ``njit`` for kernels that allocate nothing, compiled without reference counts.

With numba's runtime (NRT) on, every array a compiled function receives, passes to an inlined helper
or slices into a view (a ring row) is reference counted: an atomic increment and decrement per use,
per bar. The feature step's kernels allocate nothing (their callers hand them every array), so they
need no runtime: without it the fold ran about 15-20 % faster (measured, ``docs/benchmarks.md``,
"Feature step and batch features (issue 14, fourth session)"). A kernel compiled this way cannot
create an array; numba refuses to compile one that tries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from numba import njit

_F = TypeVar("_F", bound=Callable[..., Any])


def njit_no_nrt(*signature: str, **options: Any) -> Callable[[_F], _F]:
    """``njit(*signature, **options)`` with numba's reference-counting runtime off (``_nrt=False``)."""
    decorate: Callable[[_F], _F] = njit(*signature, _nrt=False, **options)  # type: ignore[call-overload]
    return decorate
