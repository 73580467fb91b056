"""Rate limits that several API processes share: token buckets as database rows.

On PostgreSQL every API process takes its tokens from the same rows, so a client gets
the configured rate in all, however many processes serve it. The same statement runs
on SQLite, where the tests also run it (the engine keeps SQLite's buckets in memory).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from facetrace.api.errors import RateLimited
from facetrace.api.security import RateLimiter, SharedRateLimiter, rate_limiter
from facetrace.store import schema
from facetrace.store.repository import Store

BURST = 5
PROCESSES = 4
REQUESTS = 10  # per process


@pytest.fixture
def engine(tmp_path: Path, database_url: str | None) -> Iterator[Engine]:
    store = Store.open(database_url or f"sqlite:///{(tmp_path / 'meta.db').resolve()}")
    try:
        yield store.engine
    finally:
        store.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_grants_its_burst_then_refills_at_the_rate(engine: Engine) -> None:
    clock = Clock()
    limiter = SharedRateLimiter(engine, "search-key", per_minute=60, burst=2, clock=clock)
    limiter.check("key-1")
    limiter.check("key-1")
    with pytest.raises(RateLimited) as refused:
        limiter.check("key-1")
    assert refused.value.headers == {"Retry-After": "1"}  # one token a second
    limiter.check("key-2")  # another key has its own bucket
    clock.now += 1.0
    limiter.check("key-1")
    with pytest.raises(RateLimited):
        limiter.check("key-1")
    clock.now -= 30.0  # another machine's clock, behind: no refill, no debt
    with pytest.raises(RateLimited):
        limiter.check("key-1")
    clock.now += 3_600.0
    for _ in range(2):  # refilled to the burst, not past it
        limiter.check("key-1")
    with pytest.raises(RateLimited):
        limiter.check("key-1")
    with engine.connect() as conn:
        keys = conn.execute(select(schema.rate_buckets.c.key)).scalars().all()
    assert len(keys) == 2 and "key-1" not in keys  # stored as digests


def _hammer(url: str, out: multiprocessing.Queue[int]) -> None:
    store = Store.open(url)
    limiter = SharedRateLimiter(store.engine, "search-key", per_minute=0.001, burst=BURST)
    granted = 0
    for _ in range(REQUESTS):
        try:
            limiter.check("one-client")
            granted += 1
        except RateLimited:
            pass
    store.close()
    out.put(granted)


def test_processes_share_one_budget(engine: Engine) -> None:
    """Four processes, ten requests each, one client: the burst is granted once in all."""
    url = engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[int] = context.Queue()
    workers = [context.Process(target=_hammer, args=(url, out)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    granted = [out.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert sum(granted) == BURST  # an in-process limiter would grant 4 x 5
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(schema.rate_buckets)).scalar()
    assert rows == 1


def test_full_buckets_are_pruned(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SharedRateLimiter, "PRUNE_EVERY", 3)
    clock = Clock()
    limiter = SharedRateLimiter(engine, "signin-name", per_minute=60, burst=2, clock=clock)
    limiter.check("old")
    clock.now += 10.0  # "old" is full again after 2 s
    limiter.check("new-1")
    limiter.check("new-2")  # the third check prunes
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.rate_buckets)).scalar() == 2


def test_the_database_chooses_the_kind_of_limiter(engine: Engine) -> None:
    limiter = rate_limiter(engine, "search-key", 60)
    shared = engine.dialect.name == "postgresql"
    assert isinstance(limiter, SharedRateLimiter if shared else RateLimiter)
