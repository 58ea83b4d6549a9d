"""Which instruments each live shard owns (pure; the processes are wired in ``bootstrap/shards.py``).

Kite allows 3 WebSocket connections of at most 3,000 instruments per API key, so a universe larger
than one connection, or one core, is split into shards: worker processes that each own a fixed subset
of the instruments, with their own connection, candle builder, feature state and writer.

The split is deterministic: the tokens are sorted and dealt round-robin, so the same universe gives
every shard the same instruments on every (re)start, a restarted shard resumes exactly its own
instruments from the database, and each shard gets a mix of the universe (no shard of only the
instruments listed first).
"""

from __future__ import annotations

from collections.abc import Sequence

from tickwise.domain.cpus import usable_cpus

MAX_TOKENS_PER_CONNECTION = 3000
MAX_CONNECTIONS_PER_KEY = 3
# Below this many instruments one process keeps up on one core (bench live: 1,000 instruments
# in tens of milliseconds per minute); a shard costs a process, a database pool and a Kite connection.
MIN_INSTRUMENTS_PER_EXTRA_SHARD = 1000


def default_shard_count(instruments: int, cpus: int) -> int:
    """``live.shards: null``: one shard per core, at most 3 (Kite's connections per API key), and no
    more than the universe needs (one per started 1,000 instruments beyond the first shard's 3,000
    connection limit or core)."""
    by_cores = max(1, min(cpus, MAX_CONNECTIONS_PER_KEY))
    by_size = max(1, -(-instruments // MIN_INSTRUMENTS_PER_EXTRA_SHARD))
    by_connection = -(-instruments // MAX_TOKENS_PER_CONNECTION)
    return max(1, by_connection, min(by_cores, by_size))


# Scoring threads a shard takes by default at most: a minute's rows are a few thousand, and more
# threads split them into blocks too small to pay for their hand-off.
MAX_DEFAULT_PREDICT_THREADS = 4


def default_predict_threads(shards: int, cpus: int) -> int:
    """``live.predict_threads: null``: the cores a shard has to itself (``cpus // shards``), at most
    :data:`MAX_DEFAULT_PREDICT_THREADS`; 1 when the shards already fill the cores (a second thread
    would only compete with another shard)."""
    return max(1, min(cpus // max(shards, 1), MAX_DEFAULT_PREDICT_THREADS))


def predict_threads(configured: int | None, shards: int) -> int:
    """The scoring threads of one shard: ``live.predict_threads`` when set, else
    :func:`default_predict_threads` over the CPUs this process may run on (its affinity)."""
    if configured is not None:
        return configured
    return default_predict_threads(shards, usable_cpus())


def assign_shards(tokens: Sequence[int], shards: int) -> tuple[tuple[int, ...], ...]:
    """Split ``tokens`` into ``shards`` fixed subsets (sorted, dealt round-robin).

    Raises ``ValueError`` when ``shards`` is not 1..3 or a shard would hold more than 3,000 tokens.
    """
    if not 1 <= shards <= MAX_CONNECTIONS_PER_KEY:
        raise ValueError(
            f"live.shards must be 1..{MAX_CONNECTIONS_PER_KEY} (Kite's connections per API key), got {shards}"
        )
    ordered = sorted(set(tokens))
    if len(ordered) > shards * MAX_TOKENS_PER_CONNECTION:
        raise ValueError(
            f"{len(ordered)} instruments do not fit in {shards} shard(s) of {MAX_TOKENS_PER_CONNECTION} "
            f"(Kite's limit per connection): use more shards or fewer instruments"
        )
    return tuple(tuple(ordered[i::shards]) for i in range(shards))


def shard_tokens(tokens: Sequence[int], shard: int, shards: int) -> tuple[int, ...]:
    """The tokens shard ``shard`` (0-based) of ``shards`` owns."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not one of 0..{shards - 1}")
    return assign_shards(tokens, shards)[shard]
