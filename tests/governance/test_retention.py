"""Retention: the sweeper deletes exactly the sightings past their source's period."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from facetrace import FaceTrace
from facetrace.governance.retention import run_retention
from tests.conftest import FR, JOHNS
from tests.governance.conftest import ADMIN, T0, Clock, task


def test_sweeper_deletes_exactly_what_expired(
    open_engine: Callable[..., FaceTrace], clock: Clock
) -> None:
    from datetime import timedelta

    ft = open_engine()
    ft.add_source("short", lawful_basis="t", policy={"retention_days": 30})
    ft.add_source("forever", lawful_basis="t")
    old = FR / "biden.jpg"  # short only, collected at T0: expires
    recent = FR / "obama.jpg"  # short only, collected at T0 + 20 d: stays
    shared = JOHNS / "John_Simm" / "000288_00470387.jpg"  # short (expires) and forever
    ft.ingest_tasks(
        [
            task(old, "/short/old.jpg"),
            task(recent, "/short/recent.jpg", at=T0 + timedelta(days=20)),
            task(shared, "/short/shared.jpg"),
        ],
        source="short",
        workers=1,
    )
    ft.ingest_tasks([task(shared, "/forever/shared.jpg")], source="forever", workers=1)
    faces_before = {int(i) for i in ft.store.face_ids()}

    clock.advance(days=29)
    nothing = run_retention(ft, ADMIN)
    assert nothing.sightings_removed == 0 and ft.stats().photos == 3

    clock.advance(days=6)  # T0 + 35 d: the T0 sightings of "short" are past 30 days
    report = run_retention(ft, ADMIN)
    assert report.sightings_removed == 2
    assert report.photos_removed == 1 and report.faces_removed == 1
    records = ft.store.faces(sorted(faces_before))
    origins = sorted(p.origin for f in records.values() for p in f.provenance)
    assert origins == ["/forever/shared.jpg", "/short/recent.jpg"]
    assert len(records) == 2 and np.array_equal(np.sort(ft.index.ids()), sorted(records))

    clock.advance(days=20)  # T0 + 55 d: the recent one expires too
    assert run_retention(ft, ADMIN).photos_removed == 1
    assert ft.stats().photos == 1
