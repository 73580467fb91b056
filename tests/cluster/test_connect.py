"""Connecting to a cluster and settling its tasks, with stand-ins for the ``ray`` module
and its remote functions (no cluster needed)."""

from __future__ import annotations

import sys
from concurrent.futures import Future
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import ray.exceptions as ray_errors

from facetrace import Settings
from facetrace.errors import ClusterError, MissingDependencyError
from facetrace.ingest import cluster
from facetrace.ingest.tasks import PhotoAnalysis, PhotoTask


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
    error = cluster._cluster_error(RuntimeError("Task failed: the node died.\n  traceback..."))
    assert isinstance(error, ClusterError)
    assert str(error) == "failed on the Ray cluster: Task failed: the node died."


class TaskError(Exception):
    """What Ray raises for a task that raised (its ``cause``), with a traceback as text."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__("ray::_analyse_on_worker() (pid=1, ip=127.0.0.1)\n  File ...")
        self.cause = cause


def test_an_error_the_task_raised_is_told_by_its_own_message() -> None:
    error = cluster._cluster_error(TaskError(ValueError("1 validation error for Settings\nx")))
    assert str(error) == "failed on the Ray cluster: 1 validation error for Settings"


class FlakyRemote:
    """A Ray remote function whose first runs end with the given errors, in turn."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.runs = 0

    def remote(self, *_: object) -> SimpleNamespace:
        self.runs += 1
        done: Future[PhotoAnalysis] = Future()
        if self.failures and isinstance(self.failures[0], ConnectionError):
            raise self.failures.pop(0)  # the submission itself fails
        if self.failures:
            done.set_exception(self.failures.pop(0))
        else:
            done.set_result(PhotoAnalysis(key="photo.jpg", sha256="ab"))
        return SimpleNamespace(future=lambda: done)  # an ObjectRef


def _analyse(remote: FlakyRemote) -> Future[PhotoAnalysis]:
    ray = SimpleNamespace(
        put=lambda value: value, remote=lambda **_: lambda _: remote, exceptions=ray_errors
    )
    analysis = cluster.RayAnalysis(ray, Settings(), cpus=1)
    task = PhotoTask(key="photo.jpg", origin="photo.jpg", collected_at=datetime.now(UTC))
    out = analysis.submit(task, b"jpeg")
    out.exception(timeout=10)
    analysis._resubmitter.shutdown(wait=True)
    return out


def test_a_task_ray_gave_up_for_a_lost_node_is_submitted_again() -> None:
    # Ray does not retry a task whose raylet died under it (ray-project/ray#20859).
    remote = FlakyRemote(ray_errors.LocalRayletDiedError(), ray_errors.NodeDiedError("gone"))
    assert _analyse(remote).result().sha256 == "ab"
    assert remote.runs == 3


def test_a_node_lost_every_time_ends_as_the_item_error() -> None:
    remote = FlakyRemote(*[ray_errors.LocalRayletDiedError()] * (cluster.RESUBMITS + 1))
    error = _analyse(remote).exception()
    assert str(error) == (
        "failed on the Ray cluster: The task's local raylet died. "
        "Check raylet.out for more information."
    )
    assert remote.runs == cluster.RESUBMITS + 1


def test_a_resubmission_that_cannot_be_sent_ends_as_the_item_error() -> None:
    remote = FlakyRemote(ray_errors.NodeDiedError("gone"), ConnectionError("client gone\nat"))
    assert str(_analyse(remote).exception()) == "failed on the Ray cluster: client gone"
    assert remote.runs == 2


def test_an_error_of_the_photo_is_not_submitted_again() -> None:
    remote = FlakyRemote(TaskError(ValueError("cannot identify image file")))
    assert str(_analyse(remote).exception()) == (
        "failed on the Ray cluster: cannot identify image file"
    )
    assert remote.runs == 1


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an absent package looks like
    with pytest.raises(MissingDependencyError, match=r"facetrace\[ray\]"):
        cluster._import_ray()
