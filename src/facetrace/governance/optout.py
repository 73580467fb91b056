"""Opt-out: a person removes their faces from the gallery and keeps them out.

From one photo of the person (its largest face) :func:`opt_out`

1. deletes the gallery faces the reference reaches (:func:`facetrace.identity.reach.reach`):
   those closer than ``settings.optout_threshold`` (a strict Euclidean distance), and
   then each face that the person's photos reached so far agree on; then any photo
   left with no face, scrubbing their bytes (:mod:`facetrace.governance.purge`);
2. stores the probe descriptor and those of the faces it reached as *suppression
   templates*: rows with random ids, one random group id, the model id and the
   embedding, in their own table, with no face, photo, request or time that could link
   them to the gallery or to the audit trail;
3. returns an :class:`OptOutReceipt` whose fields and wording are the same whether
   or not the person was in the gallery (counts go to the audit log only).

Afterwards :mod:`facetrace.governance.suppression` gives the pipeline's suppressor and
the search's ``exclude``: a face closer than ``settings.optout_suppress_threshold`` to a reference,
or that joins an opt-out's reached faces as the reach's growth step would, is not
stored at ingest and never returned.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facetrace.errors import UsageError
from facetrace.events import OptOutProcessed
from facetrace.governance.access import Action, Actor, require
from facetrace.governance.purge import finish_purge, holds_writers
from facetrace.governance.repository import GovernanceStore
from facetrace.governance.suppression import SUPPRESSION_LOCK, reach_rule
from facetrace.identity.reach import reach
from facetrace.store.repository import Store, translates_store_errors
from facetrace.vision.imaging import decode_image, read_image_bytes

if TYPE_CHECKING:
    from facetrace.app import FaceTrace

RECEIPT_MESSAGE = (
    "Your opt-out request has been processed. Any matching faces have been deleted "
    "and future photos of you will not be stored or returned by searches."
)


@dataclass(frozen=True, slots=True)
class OptOutReceipt:
    """The same shape and wording for everyone: a random request id, status and time."""

    request_id: str
    status: str
    at: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": self.status,
            "at": self.at,
            "message": self.message,
        }


def faces_within(store: Store, model_id: str, probe: np.ndarray, threshold: float) -> list[int]:
    """Ids of every stored face of ``model_id`` closer than ``threshold`` to the ``(dim,)`` probe.

    An exact scan of the store (the source of truth), not the approximate index: an
    opt-out must not miss a face because a compressed structure did.
    """
    q = np.asarray(probe, dtype=np.float64)
    found: list[int] = []
    for ids, vecs in store.iter_embeddings(model_id, q.shape[0]):
        d = np.linalg.norm(vecs.astype(np.float64) - q[None, :], axis=1)
        found += [int(i) for i in ids[d < threshold]]
    return found


def reached_faces(engine: FaceTrace, probe: np.ndarray) -> dict[int, np.ndarray]:
    """The stored faces an opt-out with reference ``probe`` ``(dim,)`` reaches: id ->
    ``(dim,)`` float32 embedding."""
    rule = reach_rule(engine.settings)
    near = faces_within(engine.store, engine.analyzer.model_id, probe, rule.radius)
    if not near:
        return {}
    vecs = engine.store.embeddings(near, probe.shape[0])
    records = engine.store.faces(near)
    ids = [i for i in near if i in vecs and i in records]
    photos = np.array([records[i].photo_id for i in ids], dtype=np.int64)
    mask = reach(probe, np.stack([vecs[i] for i in ids]), photos, rule)
    return {i: vecs[i] for i, hit in zip(ids, mask, strict=True) if hit}


@translates_store_errors
def opt_out(engine: FaceTrace, actor: Actor, photo: Path | bytes) -> OptOutReceipt:
    """Process an opt-out from a photo of the person; see the module docstring."""
    require(engine, actor, Action.OPTOUT)
    return _process(engine, actor, photo)


@translates_store_errors
def request_optout(engine: FaceTrace, actor: Actor, photo: bytes) -> OptOutReceipt:
    """A person's own request, with no account (anyone may ask; the API limits how
    often and answers in the same time whatever the outcome). The same work as
    :func:`opt_out`, audited with the public actor."""
    return _process(engine, actor, photo)


@holds_writers
def _process(engine: FaceTrace, actor: Actor, photo: Path | bytes) -> OptOutReceipt:
    settings = engine.settings
    data = (
        photo
        if isinstance(photo, bytes)
        else read_image_bytes(Path(photo), settings.max_image_bytes)
    )
    image = decode_image(
        data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
    )
    embeddings = engine.analyzer.embed_image(image.pixels)
    if embeddings.shape[0] == 0:
        raise UsageError("no face found in the opt-out photo; use a clear photo of one face")
    probe = np.ascontiguousarray(embeddings[0], dtype=np.float32)
    repo = GovernanceStore(engine.store.engine)
    # Alone against ingest commits (here or on other nodes): every photo is stored
    # before this looks (so it is found) or checked against the templates made here.
    with engine.store.exclusive(SUPPRESSION_LOCK):
        matches = reached_faces(engine, probe)
        deleted = repo.delete_faces(list(matches))
        reached = np.stack(list(matches.values())) if matches else np.zeros((0, probe.shape[0]))
        repo.add_templates(engine.analyzer.model_id, secrets.token_hex(16), probe, reached)
    purge = finish_purge(engine, deleted)  # runs in full even when nothing matched
    now = engine.clock()
    request_id = secrets.token_hex(8)
    engine.track_event(
        OptOutProcessed(
            actor=actor.label,
            at=now,
            request_id=request_id,
            faces_removed=len(deleted.face_ids),
            removed_ids_sha256=purge.ids_sha256,
        )
    )
    return OptOutReceipt(
        request_id=request_id,
        status="processed",
        at=now.replace(microsecond=0).isoformat(),
        message=RECEIPT_MESSAGE,
    )
