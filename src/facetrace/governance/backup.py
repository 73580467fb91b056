"""Backups that are consistent while ingest runs, and restores that never bring a
deleted person back.

:func:`backup` writes into an empty folder:

- ``facetrace.db``: SQLite's online backup of the metadata store, a consistent snapshot
  even while another process writes (WAL);
- ``thumbs/...``: the thumbnails the snapshot refers to, as files whichever blob store
  held them (the snapshot's own ``blobs`` table is emptied, so each is kept once);
- ``calibration/...``: the gallery's own calibration tables, as files likewise;
- ``index/...``: the vector index files of its last saved generation, when they can be
  read whole. The index is derived, so a restore re-adds whatever it lacks from the
  store and removes what the store does not hold;
- ``manifest.json``, written last (a folder without one is not a backup): the time,
  the audit chain head of the snapshot, and the SHA-256 and size of every file.

:func:`restore` checks every hash, copies the files into a new gallery home, puts the
thumbnails into the blob store its settings choose, and opens it (which repairs the
index). With ``replay_from`` (the gallery the backup was made from, after it went on)
it re-applies what that gallery did after the backup and may not be undone: the
takedowns in its audit trail (after the backup's head, on the same chain), the hosts
it blocked, and its opt-out templates, whose people are deleted from the restored
gallery. Without it, the report says that nothing was re-applied.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facetrace.errors import UsageError
from facetrace.events import PLATFORM_ORG, BackupMade, GalleryRestored
from facetrace.governance.access import Action, Actor, require
from facetrace.governance.audit import AuditLog
from facetrace.governance.repository import GovernanceStore
from facetrace.store.blobs import CALIBRATION, THUMBS, DatabaseBlobs, is_name
from facetrace.store.repository import Store, translates_store_errors
from facetrace.vision.dlib_resnet import file_sha256

if TYPE_CHECKING:
    from facetrace.app import FaceTrace
    from facetrace.config import Settings
    from facetrace.vision.analyzer import FaceAnalyzer

MANIFEST = "manifest.json"
FORMAT = 1
DB = "facetrace.db"


@dataclass(frozen=True, slots=True)
class BackupManifest:
    """What a backup holds; ``files`` maps a path relative to the backup to
    ``{"sha256", "bytes"}``."""

    created_at: str
    audit_count: int
    audit_hash: str
    files: dict[str, dict[str, Any]]
    index_included: bool
    thumbnails_missing: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "created_at": self.created_at,
            "audit_head": {"count": self.audit_count, "hash": self.audit_hash},
            "index_included": self.index_included,
            "thumbnails_missing": self.thumbnails_missing,
            "files": self.files,
        }

    @classmethod
    def load(cls, folder: Path) -> BackupManifest:
        path = folder / MANIFEST
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"{folder} is not a facetrace backup (no readable {MANIFEST})"
            ) from exc
        if data.get("format") != FORMAT:
            raise UsageError(f"backup format {data.get('format')!r} is not supported")
        return cls(
            created_at=data["created_at"],
            audit_count=int(data["audit_head"]["count"]),
            audit_hash=str(data["audit_head"]["hash"]),
            files=data["files"],
            index_included=bool(data["index_included"]),
            thumbnails_missing=int(data.get("thumbnails_missing", 0)),
        )


def _sqlite_path(settings: Settings) -> Path:
    url = settings.resolved_database_url
    if not url.startswith("sqlite:///"):
        raise UsageError(
            "facetrace backup copies the embedded SQLite store; back up PostgreSQL with "
            "pg_dump (it holds the thumbnails too, unless blob_store is 'folder': then "
            "copy that folder as well)"
        )
    return Path(url.removeprefix("sqlite:///"))


def _copy_index(home: Path, dest: Path) -> bool:
    """Copy the saved generation of each FAISS or exact index; False if one kept moving."""
    root = home / "index"
    if not root.exists():
        return True
    for _ in range(3):
        try:
            shutil.rmtree(dest / "index", ignore_errors=True)
            for item in sorted(root.iterdir()):
                target = dest / "index" / item.name
                if item.is_dir():  # FAISS: the files its manifest names
                    manifest = json.loads((item / "manifest.json").read_text())
                    target.mkdir(parents=True)
                    names = ["manifest.json", manifest["structure"], manifest["meta"]]
                    names.append(manifest["vectors"])
                    for name in names:
                        shutil.copy2(item / name, target / name)
                    again = json.loads((item / "manifest.json").read_text())
                    if again["generation"] != manifest["generation"]:
                        raise FileNotFoundError("the index was saved during the copy")
                elif item.suffix == ".npz":
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(item, target)
            return True
        except (FileNotFoundError, KeyError, ValueError):
            continue
    shutil.rmtree(dest / "index", ignore_errors=True)
    return False


@translates_store_errors
def backup(engine: FaceTrace, actor: Actor, dest: Path) -> BackupManifest:
    """Back the gallery up into ``dest`` (new or empty); see the module docstring."""
    require(engine, actor, Action.BACKUP)
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest} is a file; back up into a new folder")
    if dest.exists() and any(dest.iterdir()):
        raise UsageError(f"{dest} is not empty; back up into a new folder")
    dest.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(_sqlite_path(engine.settings))
    target = sqlite3.connect(dest / DB)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    snapshot = Store.open(f"sqlite:///{(dest / DB).resolve()}")
    try:
        head = AuditLog(snapshot.engine).head()
        # Each thumbnail and calibration table is kept once, as a file, whichever store
        # held it: read from the snapshot's own blobs table where it has it (then
        # emptied), else from the gallery's store. A restore puts them where its
        # settings say.
        in_snapshot = DatabaseBlobs(snapshot.engine)

        def keep(name: str) -> bool:
            data = in_snapshot.get(name) or engine.blobs.get(name)
            if data is None:
                return False
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(data)
            return True

        # A thumbnail is missing when it was deleted after the snapshot (a takedown
        # running alongside).
        missing = sum(not keep(name) for name in sorted(snapshot.thumbnails()))
        for name in sorted(in_snapshot.names(CALIBRATION) | engine.blobs.names(CALIBRATION)):
            keep(name)
        if in_snapshot.delete(in_snapshot.names(THUMBS) | in_snapshot.names(CALIBRATION)):
            GovernanceStore(snapshot.engine).scrub()
    finally:
        snapshot.close()
    index_included = _copy_index(engine.home, dest)
    files = {
        p.relative_to(dest).as_posix(): {"sha256": file_sha256(p), "bytes": p.stat().st_size}
        for p in sorted(dest.rglob("*"))
        if p.is_file()
    }
    manifest = BackupManifest(
        created_at=engine.clock().isoformat(),
        audit_count=head.count,
        audit_hash=head.hash,
        files=files,
        index_included=index_included,
        thumbnails_missing=missing,
    )
    tmp = dest / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest.to_dict(), indent=1))
    tmp.replace(dest / MANIFEST)
    engine.track_event(
        BackupMade(
            actor=actor.label,
            at=engine.clock(),
            destination=str(dest.resolve()),
            files=len(files),
            audit_count=head.count,
        )
    )
    return manifest


@dataclass
class RestoreReport:
    """What :func:`restore` did."""

    backup_created_at: str
    files: int
    replayed: bool
    takedowns: list[str] = field(default_factory=list)
    templates: int = 0
    faces_removed: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backup_created_at": self.backup_created_at,
            "files": self.files,
            "replayed": self.replayed,
            "takedowns": self.takedowns,
            "templates": self.templates,
            "faces_removed": self.faces_removed,
            "warnings": self.warnings,
        }


def restore(
    backup_dir: Path,
    settings: Settings,
    actor: Actor,
    *,
    replay_from: Path | None = None,
    analyzer: FaceAnalyzer | None = None,
) -> RestoreReport:
    """Restore ``backup_dir`` into ``settings.home`` (which must hold no gallery)."""
    from facetrace.app import FaceTrace
    from facetrace.config import Settings as _Settings

    manifest = BackupManifest.load(Path(backup_dir))
    for rel, meta in manifest.files.items():
        path = Path(backup_dir) / rel
        if not path.is_file() or file_sha256(path) != meta["sha256"]:
            raise UsageError(f"backup file {rel} is missing or changed; not restoring")
    home = settings.home
    db = _sqlite_path(settings)
    if db.exists():
        raise UsageError(f"{home} already holds a gallery; restore into a new home")
    home.mkdir(parents=True, exist_ok=True)
    blobs = [rel for rel in manifest.files if is_name(rel)]
    for rel in manifest.files:
        if is_name(rel):
            continue
        target = db if rel == DB else home / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(backup_dir) / rel, target)
    report = RestoreReport(manifest.created_at, len(manifest.files), replay_from is not None)
    with FaceTrace.open(settings, analyzer=analyzer, reconcile=False) as engine:
        for rel in blobs:  # into the store the settings choose, before any repair runs
            engine.blobs.put({rel: (Path(backup_dir) / rel).read_bytes()})
        engine.reconcile()
        if replay_from is not None:
            old = _Settings(home=Path(replay_from))
            _replay(engine, actor, manifest, old, report)
        else:
            report.warnings.append(
                f"takedowns and opt-outs made after {manifest.created_at} were not re-applied; "
                "pass the gallery the backup came from (--replay-from) if it still exists"
            )
        engine.track_event(
            GalleryRestored(
                actor=actor.label,
                at=engine.clock(),
                backup_created_at=manifest.created_at,
                replayed=report.replayed,
                takedowns=len(report.takedowns),
                templates=report.templates,
                faces_removed=report.faces_removed,
            )
        )
    return report


def _replay(
    engine: FaceTrace,
    actor: Actor,
    manifest: BackupManifest,
    old: Settings,
    report: RestoreReport,
) -> None:
    from facetrace.governance.doctor import Check, examine
    from facetrace.governance.takedown import takedown_host, takedown_source

    if not _sqlite_path(old).exists():
        raise UsageError(f"{old.home} holds no gallery to replay from")
    store = Store.open(old.resolved_database_url)
    try:
        rows = GovernanceStore(store.engine).audit_rows()
        if manifest.audit_count and (
            len(rows) < manifest.audit_count
            or rows[manifest.audit_count - 1].hash != manifest.audit_hash
        ):
            raise UsageError(
                f"{old.home} is not the gallery this backup was made from (its audit chain "
                "does not pass through the backup's head); not replaying"
            )
        # The manifest anchors the platform's chain; other organisations' chains are
        # replayed from the time the backup was made.
        log = AuditLog(store.engine)
        later = [(PLATFORM_ORG, e) for e in log.entries() if e.seq > manifest.audit_count]
        later += [
            (org, e)
            for org in GovernanceStore(store.engine).audit_orgs()
            if org != PLATFORM_ORG
            for e in log.entries(org=org)
            if e.at > manifest.created_at
        ]
        templates = GovernanceStore(store.engine).template_rows()
        hosts = GovernanceStore(store.engine).blocked_hosts()
    finally:
        store.close()
    for org, entry in later:
        if entry.kind != "takedown.performed":
            continue
        kind, target = entry.payload.get("target_kind"), str(entry.payload.get("target"))
        if kind == "source" and engine.store.get_source(target, org, owned=True) is not None:
            takedown_source(engine, replace(actor, org_id=org), target)
        elif kind == "host":
            takedown_host(engine, actor, target)
        report.takedowns.append(f"{kind} {target}")
    for host in sorted(hosts - GovernanceStore(engine.store.engine).blocked_hosts()):
        takedown_host(engine, actor, host)
        report.takedowns.append(f"host {host}")
    report.templates = GovernanceStore(engine.store.engine).add_template_rows(templates)
    found = examine(engine, actor, repair=True)
    report.faces_removed = sum(
        f.repaired for f in found.findings if f.check is Check.OPTED_OUT_FACES
    )
