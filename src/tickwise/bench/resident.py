"""What a process's resident memory is made of: its own (anonymous) pages and the libraries' file pages.

RSS alone misleads when two checkouts of the same code are compared. ``RssAnon`` is the process's own
memory (heap, numpy buffers, Python objects, a library's allocations): it is what grows with the
instruments a shard holds and what only the process can give back. ``RssFile`` is the mapped files'
pages that are resident: the shared libraries' code and data (``.so`` files of numpy, numba, pandas,
LLVM, ...). Those pages are clean, shared with every process mapping the same file and reclaimable by
the kernel at any time; how many of them count depends on the page cache, not on the code: on a page
fault the kernel maps up to ``fault_around_bytes`` (64 KB, 16 pages) of the file that are already
cached, so a freshly installed virtualenv (pip just wrote every ``.so``: all in the page cache) shows a
larger ``RssFile`` than a long-used one whose cold pages were evicted (docs/benchmarks.md, "What RSS is
made of"). PSS (``/proc/self/smaps_rollup``) charges each shared page to its processes in equal parts:
the figure that adds up across a machine's shards.

Linux only: elsewhere (or without ``/proc``) :func:`resident_now` returns None and the bench reports
RSS alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

# The fields read, by file: /proc/<pid>/status (kB) and /proc/<pid>/smaps_rollup (kB).
_STATUS_FIELDS = {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file", "RssShmem": "shmem"}
_ROLLUP_FIELDS = {"Pss": "pss", "Pss_Anon": "pss_anon", "Pss_File": "pss_file"}


@dataclass(frozen=True, slots=True)
class ResidentMemory:
    """A process's resident memory now, in MB (1 MB = 2**20 bytes), split by kind.

    ``rss = anon + file + shmem``; ``pss*`` are None where the kernel has no ``smaps_rollup`` (before
    Linux 4.14) or it cannot be read.
    """

    rss: float
    anon: float
    file: float
    shmem: float
    pss: float | None = None
    pss_anon: float | None = None
    pss_file: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)

    def minus(self, earlier: ResidentMemory) -> dict[str, float | None]:
        """The growth since ``earlier``, field by field (None where either side lacks the field)."""
        then = earlier.as_dict()
        out: dict[str, float | None] = {}
        for key, value in self.as_dict().items():
            before = then[key]
            out[key] = None if value is None or before is None else round(value - before, 1)
        return out


def parse_kb_fields(text: str, fields: dict[str, str]) -> dict[str, float]:
    """``Name:  1234 kB`` lines -> ``{fields[Name]: MB}`` for the names in ``fields`` (others ignored).

    A line that does not parse is skipped, so a kernel that words a line differently loses that field
    only, never the whole reading.
    """
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        key = fields.get(name.strip()) if sep else None
        if key is None:
            continue
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            out[key] = round(int(parts[0]) / 1024.0, 1)
    return out


def resident_now(proc: Path = Path("/proc/self")) -> ResidentMemory | None:
    """This process's :class:`ResidentMemory` (``proc``: another ``/proc/<pid>``), or None off Linux."""
    try:
        status = parse_kb_fields((proc / "status").read_text(), _STATUS_FIELDS)
    except OSError:
        return None
    if set(status) != set(_STATUS_FIELDS.values()):
        return None  # a kernel before 4.5 has no RssAnon/RssFile lines: RSS alone is reported
    try:
        rollup = parse_kb_fields((proc / "smaps_rollup").read_text(), _ROLLUP_FIELDS)
    except OSError:
        rollup = {}
    return ResidentMemory(
        rss=status["rss"],
        anon=status["anon"],
        file=status["file"],
        shmem=status["shmem"],
        pss=rollup.get("pss"),
        pss_anon=rollup.get("pss_anon"),
        pss_file=rollup.get("pss_file"),
    )
