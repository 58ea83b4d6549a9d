"""What the train stage holds at its peak, by allocation site (issue 15), on a kept bench database.

    PYTHONPATH=<checkout>/src python scripts/trace_training_memory.py prep  11 60 [DIR]
    PYTHONPATH=<checkout>/src python scripts/trace_training_memory.py train 11 60 [DIR] [trace]

``prep`` runs the bench's backfill (direct seed) and derive stages into a TimescaleDB cluster under
``DIR`` (default ``/tmp/tickwise-trainmem/db-<N>x<D>``) and keeps it; ``train`` starts that cluster
again, forgets any registered model (so the champion is trained, not skipped) and runs the bench's train
stage (``train_step``, lean model, labels and features spilled as ``tickwise train`` does). It prints
the rows, the model version and this process's peak RSS; with ``trace`` it also runs ``tracemalloc``
and prints the 25 largest allocation sites (8 frames) of the snapshot taken at the fit with the most
traced memory, each with its bytes per training row. Python and numpy allocations are traced;
LightGBM's own (C++) memory is not. Run the checkout whose code you want to measure on ``PYTHONPATH``:
the same database serves old and new code.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> None:
    from tickwise.adapters.timescale.cluster import EmbeddedCluster
    from tickwise.bench import historical as bench
    from tickwise.bootstrap.database import migrate

    mode, instruments, sessions = argv[0], int(argv[1]), int(argv[2])
    rest = [a for a in argv[3:] if a != "trace"]
    base = Path(rest[0]) if rest else Path(f"/tmp/tickwise-trainmem/db-{instruments}x{sessions}")
    port_file = base / "port"
    if mode == "prep":
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)  # the cluster may run as an unprivileged user (EmbeddedCluster)
        port_file.write_text(str(bench._free_port()))
    cluster = EmbeddedCluster(base / "db", int(port_file.read_text()), server_options=bench._SERVER_OPTIONS)
    url = cluster.up()
    migrate(cluster.admin_url())
    # a traced run is several times slower: a label read may take longer than the default 60 s
    extra = {**bench.LEAN_MODEL, "database.command_timeout_s": "900"}
    settings = bench.bench_settings(
        base, instruments=instruments, sessions=sessions, scheduler="inline", workers=1, extra=extra
    )
    try:
        if mode == "prep":
            with bench.RssSampler() as rss:
                asyncio.run(bench._stages(settings, url, rss, print, ["backfill", "derive"], "direct"))
        else:
            _train(settings, url, cluster.admin_url(), "trace" in argv)
    finally:
        cluster.down()


def _train(settings: Any, url: str, admin_url: str, trace: bool) -> None:
    import asyncpg

    import tickwise.core.fitting as fitting
    from tickwise.bootstrap.compute import training_loads
    from tickwise.bootstrap.historical import Reporter, open_historical, tracker_factory
    from tickwise.pipelines.historical.run import train_step

    peak: list[Any] = [0, None]
    if trace:
        tracemalloc.start(8)
        fit_booster = fitting.fit_booster

        def traced_fit(*args: Any, **kwargs: Any) -> Any:
            current, _ = tracemalloc.get_traced_memory()
            if current > peak[0]:
                peak[0], peak[1] = current, tracemalloc.take_snapshot()
            return fit_booster(*args, **kwargs)

        fitting.fit_booster = traced_fit  # type: ignore[assignment]

    async def forget_models() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute("TRUNCATE models CASCADE")
        finally:
            await conn.close()

    async def train() -> Any:
        async with open_historical(settings, url=url) as ctx, training_loads(settings) as loads:
            return await train_step(
                ctx, Reporter(quiet=True), tracker_factory=tracker_factory(settings), loads=loads
            )

    asyncio.run(forget_models())
    began = time.perf_counter()
    out = asyncio.run(train())
    figures = {
        "rows": out.rows,
        "model_version": out.model_version,
        "seconds": round(time.perf_counter() - began, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(figures))
    if trace and peak[1] is not None:
        print(f"traced at the largest fit: {peak[0] / 2**20:.1f} MB = {peak[0] / out.rows:.0f} B/row")
        for stat in peak[1].statistics("traceback")[:25]:
            print(f"{stat.size / 2**20:8.1f} MB {stat.size / out.rows:7.1f} B/row  blocks={stat.count}")
            for line in stat.traceback.format()[-8:]:
                print("      " + line)


if __name__ == "__main__":
    main(sys.argv[1:])
