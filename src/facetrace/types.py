"""Frozen value objects passed between the engine's parts and returned to callers.

Coordinates are pixels in the photo as stored (after EXIF orientation), with
``left``/``top`` inclusive and ``right``/``bottom`` exclusive. Distances are
Euclidean between descriptors; scores are in ``[0, 1]``, higher = more alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class BBox:
    """A face box in pixels: ``[left, top, right, bottom)``."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def as_list(self) -> list[int]:
        """``[left, top, right, bottom]``, the JSON form."""
        return [self.left, self.top, self.right, self.bottom]


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where and when a photo was found."""

    source: str
    origin: str
    page_url: str | None
    collected_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "origin": self.origin,
            "page_url": self.page_url,
            "collected_at": self.collected_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Match:
    """One gallery face matched to a probe face.

    ``distance``: Euclidean descriptor distance. ``score``: similarity in [0, 1].
    ``provenance``: every place the photo was found, earliest first; the flat
    ``source``/``origin``/``page_url``/``collected_at`` fields repeat the first.
    """

    face_id: int
    photo_id: int
    distance: float
    score: float
    bbox: BBox
    provenance: tuple[Provenance, ...]
    thumbnail: str | None = None
    false_match_rate: float | None = None
    expected_false_matches: float | None = None
    worst_group_false_match_rate: float | None = None
    person_id: int | None = None
    """The identity the gallery groups this face into (None before grouping)."""

    def to_dict(self) -> dict[str, Any]:
        first = self.provenance[0] if self.provenance else None
        return {
            "face_id": self.face_id,
            "photo_id": self.photo_id,
            "person_id": self.person_id,
            "distance": round(self.distance, 6),
            "score": round(self.score, 6),
            "false_match_rate": self.false_match_rate,
            "expected_false_matches": self.expected_false_matches,
            "worst_group_false_match_rate": self.worst_group_false_match_rate,
            "source": first.source if first else None,
            "origin": first.origin if first else None,
            "page_url": first.page_url if first else None,
            "collected_at": first.collected_at.isoformat() if first else None,
            "bbox": self.bbox.as_list(),
            "thumbnail": self.thumbnail,
            "provenance": [p.to_dict() for p in self.provenance],
        }


@dataclass(frozen=True, slots=True)
class PersonHit:
    """A probe face's matches grouped by the person the gallery holds them under.

    ``face_ids``: the matched faces of this person, best first; ``faces``, ``photos``
    and ``sources``: everything behind the person, matched or not (``facetrace people
    show ID`` lists it). ``distance``: the best match's.
    """

    person_id: int
    name: str | None
    distance: float
    false_match_rate: float | None
    face_ids: tuple[int, ...]
    faces: int
    photos: int
    sources: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "name": self.name,
            "distance": round(self.distance, 6),
            "false_match_rate": self.false_match_rate,
            "matched_faces": list(self.face_ids),
            "faces": self.faces,
            "photos": self.photos,
            "sources": self.sources,
        }


@dataclass(frozen=True, slots=True)
class ProbeFace:
    """One face found in a probe photo, with its ranked matches and the people they
    belong to (best first)."""

    bbox: BBox
    quality: float
    matches: tuple[Match, ...]
    people: tuple[PersonHit, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "bbox": self.bbox.as_list(),
            "quality": round(self.quality, 4),
            "matches": [m.to_dict() for m in self.matches],
            "people": [p.to_dict() for p in self.people],
        }


@dataclass(frozen=True, slots=True)
class SearchResult:
    """All faces of a probe photo and their matches. ``gallery_size`` in faces."""

    faces: tuple[ProbeFace, ...]
    gallery_size: int
    probe_sha256: str

    NOTICE = "Matches are investigative leads, not identifications."

    def to_dict(self) -> dict[str, Any]:
        return {
            "notice": self.NOTICE,
            "faces": [f.to_dict() for f in self.faces],
            "gallery_size": self.gallery_size,
            "probe_sha256": self.probe_sha256,
        }


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """1:1 comparison of the most prominent face of two photos."""

    same_person: bool
    distance: float
    threshold: float
    false_match_rate: float | None = None
    worst_group_false_match_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ItemError:
    """One item of a batch that failed, with a one-line reason."""

    item: str
    error: str


@dataclass(frozen=True, slots=True)
class IngestSummary:
    """Counts of one ingest run; ``errors`` lists the items that failed."""

    photos_seen: int = 0
    photos_added: int = 0
    duplicates: int = 0
    faces_added: int = 0
    errors: tuple[ItemError, ...] = field(default_factory=tuple)
    suppressed_faces: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    job_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "photos_seen": self.photos_seen,
            "photos_added": self.photos_added,
            "duplicates": self.duplicates,
            "faces_added": self.faces_added,
            "suppressed_faces": self.suppressed_faces,
            "errors": [{"item": e.item, "error": e.error} for e in self.errors],
            "seconds": round(self.seconds, 3),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }


@dataclass(frozen=True, slots=True)
class Stats:
    """Sizes of the store, in rows."""

    sources: int
    photos: int
    faces: int
    indexed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
