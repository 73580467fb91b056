"""Photo analyses on a Ray cluster (``facetrace ingest --cluster``).

Ray schedules the work: each photo's analysis (decode, detect, embed, describe) is one
Ray task needing one CPU, run by a worker process that builds its analyzer once and
keeps it for the tasks that follow. The photo's bytes travel with the task, so workers
need no shared disk; the result comes back to this process, which commits it (the
acknowledgement) exactly as with local worker processes.

Every node needs the same Python, Ray and facetrace versions as this process
(``pip install "facetrace[ray]"``): workers import facetrace and load dlib's models
from the installed packages. A worker caches the converted descriptor model under
``<temp dir>/facetrace-worker`` on its node.

A task whose worker or node dies is run again elsewhere by Ray (up to
:data:`MAX_RETRIES` times). Some losses Ray does not retry: a task whose node's raylet
was killed while it was being placed there fails with ``LocalRayletDiedError``. Such a
task is submitted again from here (up to :data:`RESUBMITS` times). If it still cannot
run, its future holds a :class:`~facetrace.errors.ClusterError` and the photo is that
item's error, which ``facetrace jobs resume`` retries. Nothing is committed from a
worker, so a lost node cannot leave a half-written or duplicated photo.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from facetrace.config import Settings
from facetrace.errors import ClusterError, MissingDependencyError
from facetrace.ingest.executors import TASKS_PER_WORKER
from facetrace.ingest.tasks import PhotoAnalysis, PhotoTask, init_worker, run_in_worker

log = logging.getLogger(__name__)

MAX_RETRIES = 3
"""Times Ray runs a task again after its worker process or node died."""
RESUBMITS = 3
"""Times an analysis is submitted again after Ray gave it up for a lost node or worker
(an error Ray does not retry itself, such as ``LocalRayletDiedError``)."""
NODE_ID_LABEL = "ray.io/node-id"
"""The label Ray gives every node: its id."""
CONNECT_ATTEMPTS = 3
"""Ray Client's server sometimes dies while it starts a session (ray-project/ray#63202,
a gRPC fork race; a few percent of connections): connecting is tried this many times."""

_ADDRESS = re.compile(r"(ray://)?[^\s:/]+:\d+")
"""``ray://HOST:PORT`` (Ray Client), or ``HOST:PORT`` of the head's GCS from a node of
the cluster."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(
            'ingest on a Ray cluster needs Ray: pip install "facetrace[ray]"'
        ) from exc
    return ray


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class RayAnalysis:
    """Analyses as Ray tasks, a few per CPU of the cluster in flight
    (an :class:`~facetrace.ingest.executors.AnalysisExecutor`)."""

    def __init__(
        self, ray: Any, settings: Settings, cpus: int, node_ids: list[str] | None = None
    ) -> None:
        self._cpus = cpus
        # What the analyzer needs, without the addresses (and passwords) of the stores.
        worker_settings = settings.model_copy(update={"database_url": None, "milvus_uri": None})
        self._settings = ray.put(worker_settings.model_dump_json())
        options: dict[str, Any] = {"num_cpus": 1, "max_retries": MAX_RETRIES}
        if node_ids is not None:  # Ray's own node labels choose the nodes
            options["label_selector"] = {NODE_ID_LABEL: f"in({','.join(node_ids)})"}
        self._remote = ray.remote(**options)(_analyse_on_worker)
        errors = ray.exceptions
        self._lost = (
            errors.LocalRayletDiedError,
            errors.NodeDiedError,
            errors.WorkerCrashedError,
            errors.ObjectLostError,
        )
        """Failures of the cluster, not of the photo: worth another try."""
        # Resubmissions run here, never on the thread that settles a Ray future (Ray
        # Client settles them on the thread that would have to answer the submission).
        self._resubmitter = ThreadPoolExecutor(1, thread_name_prefix="facetrace-resubmit")

    @classmethod
    @contextmanager
    def connect(
        cls, address: str, settings: Settings, nodes: int | None = None
    ) -> Iterator[RayAnalysis]:
        """Connect to the cluster at ``address`` for the ``with`` block.

        ``address``: ``auto`` (the cluster this machine is a node of), ``ray://HOST:PORT``
        (Ray Client, from anywhere) or ``HOST:PORT`` (the head's GCS port, from a node).
        ``nodes``: use only that many of its worker nodes (those with CPUs, in the order
        Ray lists them), as ``bench ingest --cluster`` does to measure scale-out.
        Raises :class:`ClusterError` when it cannot connect, the cluster has no CPUs, or
        fewer worker nodes than ``nodes``.
        """
        with _connected(address) as ray:
            if nodes is None:
                cpus = int(ray.cluster_resources().get("CPU", 0))
                node_ids = None
            else:
                cpus, node_ids = _first_nodes(ray, address, nodes)
            if cpus < 1:
                raise ClusterError(f"the Ray cluster at {address!r} has no CPUs to work on")
            analysis = cls(ray, settings, cpus, node_ids)
            try:
                yield analysis
            finally:
                analysis._resubmitter.shutdown(wait=True, cancel_futures=True)

    @property
    def capacity(self) -> int:
        return self._cpus * TASKS_PER_WORKER

    def submit(self, task: PhotoTask, data: bytes) -> Future[PhotoAnalysis]:
        out: Future[PhotoAnalysis] = Future()
        self._attempt(out, task, data, RESUBMITS)
        return out

    def _attempt(
        self, out: Future[PhotoAnalysis], task: PhotoTask, data: bytes, resubmits: int
    ) -> None:
        """Run the analysis on the cluster and settle ``out`` with its result, or with a
        one-line :class:`ClusterError` instead of Ray's error (a lost node or worker, or
        what the task raised: a version mismatch, say), after ``resubmits`` more tries
        for a lost node or worker."""
        # The bytes travel once, as ``data``.
        ref = self._remote.remote(self._settings, replace(task, data=None), data)

        def settle(done: Future[PhotoAnalysis]) -> None:
            if out.cancelled():  # the pipeline gave up waiting for it
                return
            exc = done.exception()
            if exc is not None and resubmits > 0 and isinstance(exc, self._lost):
                log.warning("%s: %s; submitted again", task.key, _first_line(exc))
                with contextlib.suppress(RuntimeError):  # shut down: the job is over
                    self._resubmitter.submit(self._again, out, task, data, resubmits - 1)
                    return
            with contextlib.suppress(InvalidStateError):  # cancelled meanwhile
                if exc is None:
                    out.set_result(done.result())
                else:
                    out.set_exception(_cluster_error(exc))

        ref.future().add_done_callback(settle)

    def _again(
        self, out: Future[PhotoAnalysis], task: PhotoTask, data: bytes, resubmits: int
    ) -> None:
        """:meth:`_attempt` on the resubmitting thread: a submission that fails (the
        connection is gone, say) settles ``out`` rather than leaving it waiting."""
        try:
            self._attempt(out, task, data, resubmits)
        except Exception as exc:
            with contextlib.suppress(InvalidStateError):
                out.set_exception(_cluster_error(exc))


def node_cpus(address: str) -> list[int]:
    """The CPUs of each live worker node of the cluster at ``address``, in the order
    :meth:`RayAnalysis.connect` takes them. Raises :class:`ClusterError`."""
    with _connected(address) as ray:
        return [int(n["Resources"]["CPU"]) for n in _worker_nodes(ray)]


@contextmanager
def _connected(address: str) -> Iterator[Any]:
    """The ``ray`` module, connected to the cluster at ``address`` for the ``with``
    block (or already connected, and then left so).

    A driver connected to the GCS prints the cluster's error messages ("(raylet) A
    worker died...") on stdout, where they would break ``--json`` output: they are
    diagnostics, so they go to stderr while connected."""
    if address != "auto" and not _ADDRESS.fullmatch(address):
        raise ClusterError(
            f"--cluster {address!r}: expected 'auto', 'ray://HOST:PORT' or 'HOST:PORT'"
        )
    ray = _import_ray()
    with contextlib.redirect_stdout(sys.stderr):
        owned = not ray.is_initialized()
        if owned:
            _init(ray, address)
        try:
            yield ray
        finally:
            if owned:
                ray.shutdown()


def _worker_nodes(ray: Any) -> list[dict[str, Any]]:
    """Live nodes with at least one CPU, in the order Ray lists them."""
    return [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) >= 1]


def _first_nodes(ray: Any, address: str, nodes: int) -> tuple[int, list[str]]:
    """The CPUs and ids of the cluster's first ``nodes`` live worker nodes."""
    if nodes < 1:
        raise ClusterError(f"cannot run on {nodes} nodes")
    workers = _worker_nodes(ray)
    if len(workers) < nodes:
        raise ClusterError(
            f"the Ray cluster at {address!r} has {len(workers)} worker nodes with CPUs, not {nodes}"
        )
    chosen = workers[:nodes]
    return int(sum(n["Resources"]["CPU"] for n in chosen)), [n["NodeID"] for n in chosen]


def _init(ray: Any, address: str) -> None:
    """Connect this process to the cluster, or raise :class:`ClusterError`."""
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # Ray's tips at connection
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
            # Ray Client's advice once 10 MB of tasks were sent: each photo's bytes go
            # with its task by design (no shared disk).
            warnings.filterwarnings(
                "ignore", message="More than 10MB of messages", category=UserWarning
            )
            return
        except ConnectionAbortedError as exc:  # the session's server died starting
            ray.shutdown()
            if attempt == CONNECT_ATTEMPTS:
                raise ClusterError(
                    f"cannot connect to the Ray cluster at {address!r}: {_first_line(exc)}"
                ) from exc
        except Exception as exc:  # ConnectionError, RuntimeError, gRPC errors...
            raise ClusterError(
                f"cannot connect to the Ray cluster at {address!r}: {_first_line(exc)}"
            ) from exc


def _cluster_error(exc: BaseException) -> ClusterError:
    """Ray's error as one line."""
    cause = getattr(exc, "cause", None)  # a RayTaskError: what the task raised
    reason = _first_line(cause if isinstance(cause, BaseException) else exc)
    error = ClusterError(f"failed on the Ray cluster: {reason}")
    error.__cause__ = exc
    return error


# --- worker-process side ------------------------------------------------------

_built_for: str | None = None
"""The settings this worker process's analyzer was built with (Ray reuses processes)."""


def _analyse_on_worker(settings_json: str, task: PhotoTask, data: bytes) -> PhotoAnalysis:
    global _built_for
    if _built_for != settings_json:
        home = Path(tempfile.gettempdir()) / "facetrace-worker"  # the model cache, node-local
        settings = Settings.model_validate_json(settings_json).model_copy(update={"home": home})
        init_worker(settings.model_dump_json())
        _built_for = settings_json
    return run_in_worker(task, data)
