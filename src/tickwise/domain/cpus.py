"""How many CPUs this process may run on: the default size of what runs one per core."""

from __future__ import annotations

import os

__all__ = ["usable_cpus"]


def usable_cpus() -> int:
    """The CPUs of this process's affinity, which a container or ``taskset`` narrows (the machine's
    count where affinity is unknown), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not every platform has affinity (macOS)
        return os.cpu_count() or 1
