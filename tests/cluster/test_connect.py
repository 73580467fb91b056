"""Connecting to a cluster, with a stand-in for the ``ray`` module (no cluster needed)."""

from __future__ import annotations

import sys
from concurrent.futures import Future

import pytest

from facetrace.errors import ClusterError, MissingDependencyError
from facetrace.ingest import cluster
from facetrace.ingest.tasks import PhotoAnalysis


class FakeRay:
    """``ray.init`` fails with the given errors, in turn, then connects."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.inits = 0
        self.shutdowns = 0

    def init(self, **_: object) -> None:
        self.inits += 1
        if self.failures:
            raise self.failures.pop(0)

    def shutdown(self) -> None:
        self.shutdowns += 1


def test_a_session_whose_server_dies_starting_is_tried_again() -> None:
    ray = FakeRay(ConnectionAbortedError("Initialization failure from server:\n"))
    cluster._init(ray, "ray://127.0.0.1:10001")
    assert (ray.inits, ray.shutdowns) == (2, 1)


def test_a_cluster_that_keeps_failing_is_one_line_error() -> None:
    ray = FakeRay(*[ConnectionAbortedError("Initialization failure\nfrom server")] * 5)
    with pytest.raises(ClusterError, match=r"Initialization failure$"):
        cluster._init(ray, "ray://127.0.0.1:10001")
    assert ray.inits == cluster.CONNECT_ATTEMPTS


def test_an_unreachable_cluster_is_not_tried_again() -> None:
    ray = FakeRay(ConnectionError("Could not find any running Ray instance.\nPlease..."))
    with pytest.raises(ClusterError, match=r"at 'auto': Could not find any running Ray instance"):
        cluster._init(ray, "auto")
    assert ray.inits == 1


def test_a_lost_task_is_a_one_line_cluster_error() -> None:
    remote: Future[PhotoAnalysis] = Future()
    translated = cluster._translated(remote)
    remote.set_exception(RuntimeError("Task failed: the node died.\n  traceback..."))
    error = translated.exception()
    assert isinstance(error, ClusterError)
    assert str(error) == "failed on the Ray cluster: Task failed: the node died."


class TaskError(Exception):
    """What Ray raises for a task that raised (its ``cause``), with a traceback as text."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__("ray::_analyse_on_worker() (pid=1, ip=127.0.0.1)\n  File ...")
        self.cause = cause


def test_an_error_the_task_raised_is_told_by_its_own_message() -> None:
    remote: Future[PhotoAnalysis] = Future()
    translated = cluster._translated(remote)
    remote.set_exception(TaskError(ValueError("1 validation error for Settings\nextra")))
    assert str(translated.exception()) == (
        "failed on the Ray cluster: 1 validation error for Settings"
    )


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an absent package looks like
    with pytest.raises(MissingDependencyError, match=r"facetrace\[ray\]"):
        cluster._import_ray()
