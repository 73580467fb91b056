"""Collecting images from the web: a polite, SSRF-guarded fetcher under a source policy.

Public surface::

    SourcePolicy                      scope and limits of one source (stored per source)
    Fetcher(policy, settings)         async context manager; fetch / fetch_many / fetch_image
    fetch_urls_async(urls, policy, settings)  -> async iterator of FetchedImage | Refusal
    fetch_urls(urls, policy, settings)        -> iterator (runs its own event loop)
    FetchedImage, Refusal, RefusalKind        what comes out
    DEFAULT_DENY_HOSTS                hosts never fetched, whatever a policy says

Importing this package loads httpx and Protego but opens no connection.
"""

from __future__ import annotations

from facetrace.ingest.fetch.fetcher import MAX_REDIRECTS, Fetcher, fetch_urls, fetch_urls_async
from facetrace.ingest.fetch.policy import DEFAULT_DENY_HOSTS, SourcePolicy, denied_host
from facetrace.ingest.fetch.ssrf import check_ip, check_url
from facetrace.ingest.fetch.types import FetchedImage, Refusal, RefusalKind

__all__ = [
    "DEFAULT_DENY_HOSTS",
    "MAX_REDIRECTS",
    "FetchedImage",
    "Fetcher",
    "Refusal",
    "RefusalKind",
    "SourcePolicy",
    "check_ip",
    "check_url",
    "denied_host",
    "fetch_urls",
    "fetch_urls_async",
]
