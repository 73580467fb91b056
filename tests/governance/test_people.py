"""People: faces grouped into identities at ingest, human corrections that survive a
full recluster, and an opt-out that reaches a person's group."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from facetrace import FaceTrace
from facetrace.errors import UsageError
from facetrace.governance.audit import AuditLog
from facetrace.governance.optout import opt_out
from facetrace.governance.takedown import takedown_source
from facetrace.identity import people
from facetrace.identity.cluster import Constraints, average_linkage, incremental
from facetrace.identity.reach import ReachRule, reach
from facetrace.identity.repository import IdentityStore
from facetrace.store.repository import FaceRecord
from facetrace.vision.analyzer import FaceAnalyzer
from facetrace.vision.imaging import decode_image
from tests.conftest import FR, JOHNS
from tests.governance.conftest import ADMIN, task

PEOPLE = sorted(d for d in JOHNS.iterdir() if d.is_dir())


def _ingest(ft: FaceTrace, paths: list[Path], source: str = "s") -> None:
    if ft.store.get_source(source) is None:
        ft.add_source(source, lawful_basis="test")
    ft.ingest_tasks([task(p, str(p)) for p in paths], source=source, workers=1)


def _people_by_origin(ft: FaceTrace) -> dict[str, set[int]]:
    """Folder name (the true person) -> identity ids of its faces."""
    repo = IdentityStore(ft.store.engine)
    ids = [int(i) for i in ft.store.face_ids()]
    owner = repo.identity_of(ids)
    out: dict[str, set[int]] = {}
    for face_id, rec in ft.store.faces(ids).items():
        out.setdefault(Path(rec.provenance[0].origin).parent.name, set()).add(owner[face_id])
    return out


def test_each_john_is_one_person_and_search_groups_by_person(
    open_engine: Callable[..., FaceTrace],
) -> None:
    ft = open_engine()
    _ingest(ft, [p for d in PEOPLE for p in sorted(d.glob("*.jpg"))[1:]])
    found = _people_by_origin(ft)
    assert all(len(ids) == 1 for ids in found.values()), found
    assert len({next(iter(ids)) for ids in found.values()}) == len(PEOPLE)  # no mixing
    probe = sorted(PEOPLE[0].glob("*.jpg"))[0]
    result = ft.search(probe.read_bytes(), case_id="C1", reason="test")
    best = result.faces[0].people[0]
    assert best.person_id == next(iter(found[PEOPLE[0].name]))
    ids = [int(i) for i in ft.store.face_ids()]
    stored = {
        r.photo_id
        for r in ft.store.faces(ids).values()
        if Path(r.provenance[0].origin).parent == PEOPLE[0]
    }
    assert best.photos == best.faces == len(stored) >= 8  # near-duplicates are stored once
    assert all(m.person_id is not None for m in result.faces[0].matches)


def test_a_new_face_joins_its_person_without_a_recompute(
    open_engine: Callable[..., FaceTrace],
) -> None:
    ft = open_engine()
    salley = sorted(PEOPLE[0].glob("*.jpg"))
    simm = sorted((JOHNS / "John_Simm").glob("*.jpg"))
    _ingest(ft, salley[:3] + simm[:3])
    before = _people_by_origin(ft)
    _ingest(ft, salley[3:4])
    after = _people_by_origin(ft)
    assert after == before  # the newcomer joined Salley; nobody was renumbered
    assert IdentityStore(ft.store.engine).summaries(list(after["John_Salley"]))[0].faces == 4


def test_faces_of_one_photo_are_never_one_person(open_engine: Callable[..., FaceTrace]) -> None:
    # A grouping distance so loose that everything else would become one person.
    ft = open_engine(cluster_threshold=5.0, cluster_votes=1)
    _ingest(ft, [FR / "obama_and_biden.jpg", FR / "obama.jpg", FR / "biden.jpg"])
    group_photo = ft.store.photo_id_by_sha(_sha(FR / "obama_and_biden.jpg"))
    repo = IdentityStore(ft.store.engine)
    assert group_photo is not None
    faces_in_photo = len(
        [
            r
            for r in ft.store.faces([int(i) for i in ft.store.face_ids()]).values()
            if r.photo_id == group_photo
        ]
    )
    assert faces_in_photo >= 2
    assert len(repo.identities_in_photo(group_photo)) == faces_in_photo
    assert len(IdentityStore(ft.store.engine).summaries()) == faces_in_photo  # rest joined
    people.recluster(ft, ADMIN)
    assert len(repo.identities_in_photo(group_photo)) == faces_in_photo
    # and a person cannot merge them either
    a, b, *_ = sorted(repo.identities_in_photo(group_photo))
    with pytest.raises(UsageError, match="never one person"):
        people.merge(ft, ADMIN, a, [b])


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_merge_split_name_and_reject_survive_recluster(
    open_engine: Callable[..., FaceTrace],
) -> None:
    ft = open_engine()
    salley = sorted(PEOPLE[0].glob("*.jpg"))[:5]
    simm = sorted((JOHNS / "John_Simm").glob("*.jpg"))[:4]
    _ingest(ft, salley + simm)
    repo = IdentityStore(ft.store.engine)
    found = _people_by_origin(ft)
    (sal,), (sim,) = found["John_Salley"], found["John_Simm"]
    sal_faces = repo.members(sal)
    # A person says: two of Salley's faces are someone else, and Simm is to be named.
    moved = people.split(ft, ADMIN, sal, sal_faces[:2])
    people.name(ft, ADMIN, sim, "John Simm")
    rejected_face = repo.members(sim)[0]
    people.reject(ft, ADMIN, sim, [rejected_face])
    merged = people.merge(ft, ADMIN, sal, [moved.id])  # ... and changes their mind
    assert merged.faces == 5

    for _ in range(2):  # recluster twice: decisions hold, ids are stable
        people.recluster(ft, ADMIN)
        assert sorted(repo.members(sal)) == sorted(sal_faces)
        assert repo.summaries([sim])[0].name == "John Simm"
        assert rejected_face not in repo.members(sim)
        assert repo.identity_of([rejected_face])[rejected_face] != sim
    # A new photo of Simm still joins the named person, not the rejected face.
    _ingest(ft, sorted((JOHNS / "John_Simm").glob("*.jpg"))[4:5])
    assert repo.summaries([sim])[0].faces == 4
    kinds = Counter(e.kind for e in AuditLog(ft.store.engine).entries())
    for kind in ("people.split", "people.named", "people.rejected", "people.merged"):
        assert kinds[kind] == 1, kind
    assert kinds["people.reclustered"] == 2


def test_takedown_leaves_no_empty_person(open_engine: Callable[..., FaceTrace]) -> None:
    ft = open_engine()
    _ingest(ft, sorted(PEOPLE[0].glob("*.jpg"))[:3], source="gone")
    _ingest(ft, sorted((JOHNS / "John_Simm").glob("*.jpg"))[:3], source="kept")
    takedown_source(ft, ADMIN, "gone")
    summaries = IdentityStore(ft.store.engine).summaries()
    assert [s.faces for s in summaries] == [3]
    with ft.store.engine.connect() as conn:
        from sqlalchemy import func, select

        from facetrace.identity.schema import identities

        assert conn.execute(select(func.count()).select_from(identities)).scalar() == 1


def _embedding(analyzer: FaceAnalyzer, path: Path) -> np.ndarray:
    image = decode_image(path.read_bytes(), max_bytes=10**8, max_pixels=10**8)
    return analyzer.embed_image(image.pixels)[0]


def test_optout_reaches_a_face_the_reference_alone_misses(
    open_engine: Callable[..., FaceTrace], analyzer: FaceAnalyzer
) -> None:
    ft = open_engine()
    shimkus = sorted((JOHNS / "John_Shimkus").glob("*.jpg"))
    others = [p for d in PEOPLE if d.name != "John_Shimkus" for p in sorted(d.glob("*.jpg"))]
    _ingest(ft, shimkus[1:] + others)
    reference = _embedding(analyzer, shimkus[0])
    ids = [int(i) for i in ft.store.face_ids()]
    stored = ft.store.embeddings(ids, 128)
    origin = {i: Path(r.provenance[0].origin) for i, r in ft.store.faces(ids).items()}
    alone = {i for i in ids if np.linalg.norm(stored[i] - reference) < ft.settings.optout_threshold}
    opt_out(ft, ADMIN, shimkus[0])
    left = {int(i) for i in ft.store.face_ids()}
    gone = set(ids) - left
    assert alone < gone  # more than the reference alone reaches ...
    assert all(origin[i].parent.name == "John_Shimkus" for i in gone)  # ... and only him
    assert IdentityStore(ft.store.engine).summaries()  # the other Johns keep their people


def test_later_photos_are_suppressed_by_the_faces_the_optout_reached(
    open_engine: Callable[..., FaceTrace], analyzer: FaceAnalyzer
) -> None:
    ft = open_engine()
    shimkus = sorted((JOHNS / "John_Shimkus").glob("*.jpg"))
    reference = _embedding(analyzer, shimkus[0])
    far = [p for p in shimkus[1:] if np.linalg.norm(_embedding(analyzer, p) - reference) > 0.38]
    near = [p for p in shimkus[1:] if p not in far]
    others = [sorted(d.glob("*.jpg"))[-1] for d in PEOPLE if d.name != "John_Shimkus"]
    _ingest(ft, near)
    opt_out(ft, ADMIN, shimkus[0])
    assert ft.stats().faces == 0
    # Photos of him further than the reference alone suppresses arrive later ...
    assert far and all(
        np.linalg.norm(_embedding(analyzer, p) - reference) >= ft.settings.optout_suppress_threshold
        for p in far
    )
    summary = ft.ingest_tasks([task(p, "/later/" + p.name) for p in far + others], source="s")
    stored = {Path(r.provenance[0].origin).name for r in _all_faces(ft)}
    # ... and most are kept out by the faces the opt-out reached; other people are not.
    assert {p.name for p in others} <= stored
    kept_out = [p for p in far if p.name not in stored]
    assert len(kept_out) >= len(far) - 1, (len(kept_out), len(far))
    assert summary.suppressed_faces == len(kept_out)


def _all_faces(ft: FaceTrace) -> list[FaceRecord]:
    return list(ft.store.faces([int(i) for i in ft.store.face_ids()]).values())


def test_reach_grows_only_where_several_faces_agree() -> None:
    rule = ReachRule(direct=0.38, group_threshold=0.48, agree=0.42, radius=0.6, votes=3)
    ref = np.zeros(3)

    def at(*xyz: float) -> np.ndarray:
        return np.array(xyz, dtype=np.float64)

    # Three faces reached directly, then a chain: 0.45 and 0.56 from the reference,
    # each close to three of the faces reached before it.
    person = np.stack(
        [at(0.3, 0, 0), at(0.25, 0.1, 0), at(0.3, 0.1, 0.05), at(0.4, 0.2, 0), at(0.45, 0.33, 0)]
    )
    # A lookalike at 0.45 from the reference but in another direction: only the
    # reference is anywhere near it, so it stays.
    lookalike = at(-0.2, 0, 0.4)
    faces = np.vstack([person, lookalike])
    d = np.linalg.norm(faces, axis=1)
    assert (d[3:] > rule.direct).all()  # the reference alone misses three faces
    hit = reach(ref, faces, np.arange(6), rule)
    assert hit.tolist() == [True, True, True, True, True, False]
    # With two faces reached directly, the 0.45 face has only two of three agreeing.
    assert reach(ref, np.delete(faces, 2, 0), np.arange(5), rule).tolist() == [
        True,
        True,
        False,
        False,
        False,
    ]
    # Beyond the radius nothing is reached, however well it agrees.
    far = np.vstack([person, at(0.62, 0.2, 0)])
    assert not reach(ref, far, np.arange(6), rule)[5]
    # Two faces of one photo: at most one of them is the person.
    twin = reach(ref, person[:2], np.array([7, 7]), rule)
    assert twin.sum() == 1


def test_average_linkage_keeps_pins_and_photos_apart() -> None:
    x = np.array([[0.0], [0.1], [0.2], [5.0], [5.1]])
    labels = average_linkage(x, 0.5)
    assert len(set(labels[:3])) == 1 and labels[3] == labels[4] != labels[0]
    pinned = Constraints(photo=np.arange(5), pinned=np.array([1, -1, 2, -1, -1]))
    labels = average_linkage(x, 0.5, constraints=pinned)
    assert labels[0] != labels[2]  # two pinned people never join
    same_photo = Constraints(photo=np.array([0, 0, 1, 2, 3]), pinned=np.full(5, -1))
    assert (
        average_linkage(x, 0.5, constraints=same_photo)[0]
        != average_linkage(x, 0.5, constraints=same_photo)[1]
    )
    labels = incremental(x, 0.5, votes=1)
    assert len(set(labels[:3])) == 1 and labels[3] == labels[4] != labels[0]
    # Two faces too far apart to join, then a face between them: it joins the first,
    # and the grown identity and the second pass the group test, so they merge.
    bridged = incremental(np.array([[0.0], [0.8], [0.4]]), 0.7, votes=1)
    assert len(set(bridged)) == 1
    assert len(set(incremental(np.array([[0.0], [0.8]]), 0.7, votes=1))) == 2
