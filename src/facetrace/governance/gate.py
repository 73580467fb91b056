"""The ingest gate: refuses items from blocked hosts or from a source blocked meanwhile.

The pipeline asks the gate about each item before reading or storing it. Refusals are
counted per host and recorded by the engine as ``ingest.refused`` audit events (the
refused URLs themselves are not stored).
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from facetrace.governance.repository import GovernanceStore
from facetrace.ingest.tasks import PhotoTask
from facetrace.store.repository import SourceRecord, SourceStatus, Store

REFRESH_SECONDS = 2.0


def url_host(url: str | None) -> str | None:
    """The lower-case host of ``url``, or None for a path or an unparsable value."""
    if not url or "://" not in url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.rstrip(".").lower() if host else None


def host_in(host: str | None, domain: str) -> bool:
    """Whether ``host`` is ``domain`` or one of its subdomains."""
    return host is not None and (host == domain or host.endswith("." + domain))


def blocked_domain(task: PhotoTask, blocked: set[str]) -> str | None:
    """The blocked domain that the task's origin or page URL falls under, if any."""
    for url in (task.origin, task.page_url):
        host = url_host(url)
        if host is None:
            continue
        for domain in blocked:
            if host_in(host, domain):
                return domain
    return None


class IngestGate:
    """Callable ``task -> refusal reason | None`` for :class:`IngestPipeline`.

    Re-reads the block list and the source's status every ``REFRESH_SECONDS`` so a
    takedown made during a long ingest stops it.
    """

    def __init__(self, store: Store, source: SourceRecord) -> None:
        self.store = store
        self.repo = GovernanceStore(store.engine)
        self.source = source
        self.refused: dict[str, int] = {}
        self._blocked: set[str] = set()
        self._source_blocked = False
        self._loaded = -1e9
        self._refresh()

    def _refresh(self) -> None:
        self._blocked = self.repo.blocked_hosts()
        current = self.store.source_by_id(self.source.id)
        self._source_blocked = current is None or current.status != SourceStatus.ACTIVE
        self._loaded = time.monotonic()

    def __call__(self, task: PhotoTask) -> str | None:
        if time.monotonic() - self._loaded > REFRESH_SECONDS:
            self._refresh()
        if self._source_blocked:
            key = f"source:{self.source.name}"
            self.refused[key] = self.refused.get(key, 0) + 1
            return f"refused: source {self.source.name!r} is blocked"
        if not self._blocked:
            return None
        domain = blocked_domain(task, self._blocked)
        if domain is None:
            return None
        self.refused[domain] = self.refused.get(domain, 0) + 1
        return f"refused: host {domain} is blocked"
