"""The batch scan on Ray Data: the same results as :func:`knockoff.run.scan.scan`, spread over a Ray cluster.

Listings are decoded in parallel Ray tasks, then embedded and decided in a fixed pool of actors that each load
the embedder and the detector once (one GPU each when the cluster has GPUs and the engine uses them); the
index travels once through the object store (:meth:`ReferenceIndex.to_state`). The driver runs the same job as
the local scan (:mod:`knockoff.run.job`: the same results store, lock, resume and fingerprints), so both write
the same lines, in listing order, and either resumes the other's output.

Ray is an optional extra (``pip install 'knockoff[ray]'``); this module imports it only when a scan starts.
The pool is sized from the cluster's resources and always leaves at least one CPU to the decoding tasks: a
pool that holds every CPU starves them and the pipeline stalls. A scan never waits forever: when no result
arrives for ``timeout_s`` seconds it stops with a :class:`KnockoffError`; what was written stays, and
running the scan again resumes.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knockoff.catalog.readers import Listing
from knockoff.decide.detector import Detector, decode_listing
from knockoff.decide.policy import Policy
from knockoff.errors import ConfigError, ScanError
from knockoff.match.index import ReferenceIndex
from knockoff.run.job import ScanJob, ScanSummary, load_index, open_job
from knockoff.run.progress import Progress

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 600.0
"""Longest wait for the next batch of results (the first one includes starting actors and loading models)."""

_REGISTRY_EMBEDDERS = ("clip", "perceptual")  # made again on each actor from their name; others are pickled
_GPU_EMBEDDERS = ("clip",)
_DECODE_BATCH = 8
_JOIN_S = 15.0  # longest wait for the consuming thread to stop after a failure
_DECODE_MEMORY = 256 << 20  # bytes a decoding task reserves: a batch of decoded photos


@dataclass(frozen=True)
class RayPlan:
    """How a Ray scan uses the cluster: actors, and what each one reserves."""

    num_actors: int
    actor_cpus: float
    actor_gpus: float
    cluster_cpus: float
    cluster_gpus: float


@dataclass(frozen=True)
class RayOptions:
    """How a Ray scan runs (see :func:`scan_with_ray`)."""

    address: str | None = None
    num_cpus: int | None = None
    num_actors: int | None = None
    workers: int | None = None
    batch_size: int = 32
    progress: bool | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.timeout_s <= 0:
            raise ConfigError(f"timeout_s must be > 0, got {self.timeout_s}")

def plan_actors(
    resources: dict[str, float], *, num_actors: int | None = None, use_gpus: bool = True
) -> RayPlan:
    """Size the actor pool from the cluster's resources, leaving at least one CPU to the decoding tasks.

    GPUs: one actor a GPU. CPUs only: one actor a CPU on all but a quarter of the CPUs (at least one left).
    An explicit ``num_actors`` that would take every CPU gets fractional CPUs instead (Ray's CPUs are
    scheduling slots): a pool holding every CPU starved the decoding tasks and the pipeline hung.
    """
    cpus = float(resources.get("CPU", 0))
    gpus = float(resources.get("GPU", 0)) if use_gpus else 0.0
    if cpus < 2:
        raise ScanError(
            f"a Ray scan needs at least 2 CPUs in the cluster (one for the actors, one for decoding), it has {cpus:g}"
        )
    reserve = max(1.0, float(int(cpus) // 4))
    if num_actors is None:
        num_actors = int(gpus) if gpus >= 1 else max(1, int(cpus - reserve))
    if num_actors < 1:
        raise ConfigError(f"num_actors must be >= 1, got {num_actors}")
    actor_gpus = 1.0 if gpus >= 1 else 0.0
    if actor_gpus and num_actors > gpus:
        raise ScanError(f"{num_actors} GPU actors asked for, the cluster has {gpus:g} GPUs")
    actor_cpus = min(1.0, (cpus - 1.0) / num_actors)
    return RayPlan(num_actors, round(actor_cpus, 3), actor_gpus, cpus, gpus)


def scan_with_ray(
    folder: str | Path,
    index: ReferenceIndex | str | Path,
    out_dir: str | Path,
    *,
    policy: Policy | None = None,
    listings_csv: str | Path | None = None,
    workers: int | None = None,
    batch_size: int = 32,
    progress: bool | None = None,
    detector: Detector | None = None,
    address: str | None = None,
    num_actors: int | None = None,
    num_cpus: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ScanSummary:
    """Scan a folder like :func:`knockoff.run.scan.scan`, on Ray; resumable; returns a summary.

    ``address``: a running Ray cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); None starts a
    local Ray instance with ``num_cpus`` logical CPUs (default: twice the cores, at least 4) and stops it
    after. An already initialized Ray connection is used as it is and left open.
    ``workers``: most decoding tasks at once (default: as many as Ray schedules).
    ``batch_size``: listings per actor call. ``num_actors``: the pool size (default: from the resources,
    see :func:`plan_actors`). ``detector``: its policy, image limits and index are used (each actor makes its
    own detector). ``timeout_s``: longest wait for the next results before failing with
    :class:`KnockoffError`.
    """
    options = RayOptions(address, num_cpus, num_actors, workers, batch_size, progress, timeout_s)
    detector = detector or Detector(load_index(index), policy)
    with open_job(folder, detector, out_dir, listings_csv) as job:
        if job.todo:
            _run(job, detector, options)
        return job.summary()


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise ScanError(
            f"the ray engine needs Ray Data: pip install 'knockoff[ray]' (or 'ray[data]') ({exc})"
        ) from exc
    return ray


def _payload(detector: Detector) -> dict[str, Any]:
    """What every actor needs, put once in the object store."""
    embedder = detector.index.embedder
    return {
        "state": detector.index.to_state(),
        "embedder": embedder.name if embedder.kind in _REGISTRY_EMBEDDERS else embedder,
        "policy": detector.policy,
        "detector": {"verifier": "auto" if detector.verifier is not None else None},  # the rest is in the policy
    }


def _connect(ray: Any, options: RayOptions) -> bool:
    """Start or join Ray unless it is already initialized; whether it was started here."""
    if ray.is_initialized():
        return False
    init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if options.address:
        ray.init(address=options.address, **init)
    else:
        ray.init(num_cpus=options.num_cpus or max(4, 2 * (os.cpu_count() or 1)), **init)
    return True


def _run(job: ScanJob, detector: Detector, options: RayOptions) -> None:
    ray = _import_ray()
    connected_here = _connect(ray, options)
    context = ray.data.DataContext.get_current()
    saved = (context.execution_options.preserve_order, context.enable_progress_bars)
    bar = Progress(len(job.todo), bar=options.progress)
    try:
        plan = plan_actors(ray.cluster_resources(), num_actors=options.num_actors,
                           use_gpus=detector.index.embedder.kind in _GPU_EMBEDDERS)
        log.info("ray scan of %d listings: %d actors (%g CPU, %g GPU each) on %g CPUs, %g GPUs", len(job.todo),
                 plan.num_actors, plan.actor_cpus, plan.actor_gpus, plan.cluster_cpus, plan.cluster_gpus)
        context.execution_options.preserve_order = True  # results.jsonl in listing order, as the local scan
        context.enable_progress_bars = False
        dataset = _dataset(ray, job.todo, detector, plan, options)
        _write(dataset, job, bar, options.timeout_s, plan)
    finally:
        bar.close()
        context.execution_options.preserve_order, context.enable_progress_bars = saved
        if connected_here:
            ray.shutdown()


def _dataset(ray: Any, todo: list[Listing], detector: Detector, plan: RayPlan, options: RayOptions) -> Any:
    """Decoding tasks, then the pool of deciding actors."""
    payload = ray.put(_payload(detector))
    limits = {"min_side": detector.index.embedder.input_size, "max_side": detector.max_side,
              "max_pixels": detector.max_pixels}
    items = [{"i": i, "listing": pickle.dumps(listing)} for i, listing in enumerate(todo)]
    blocks = max(1, min(len(items) // _DECODE_BATCH, 4 * int(plan.cluster_cpus)))
    decode_args: dict[str, Any] = {"concurrency": options.workers} if options.workers else {}
    return (
        ray.data.from_items(items, override_num_blocks=blocks)
        # the memory reservation (decoded photos) also keeps Ray Data from fusing decoding into the actors
        .map_batches(_decode_batch, fn_kwargs={"limits": limits}, batch_size=_DECODE_BATCH, num_cpus=1,
                     memory=_DECODE_MEMORY, batch_format="numpy", **decode_args)
        .map_batches(_DecideActor, fn_constructor_args=([payload],), batch_size=options.batch_size,
                     batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=plan.num_actors),
                     num_cpus=plan.actor_cpus, num_gpus=plan.actor_gpus)
    )


class _Pump:
    """Consumes a dataset's batches in a thread and hands them over through a small queue."""

    def __init__(self, dataset: Any):
        self.dataset = dataset
        self.batches: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=4)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._pump, name="knockoff-ray-scan", daemon=True)

    def _pump(self) -> None:
        try:
            for batch in self.dataset.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1):
                if not self._put(("batch", batch)):
                    return
            self.batches.put(("end", None))
        except BaseException as exc:  # handed to the writing thread, which raises it  # noqa: BLE001
            self.batches.put(("error", exc))

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self.stop.is_set():
            try:
                self.batches.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> None:
        self.stop.set()
        # let the pump leave the iterator, which stops Ray Data's executor, before Ray may be shut down;
        # bounded: a truly stuck pipeline is left to ray.shutdown()
        self.thread.join(timeout=_JOIN_S)


def _write(dataset: Any, job: ScanJob, bar: Progress, timeout_s: float, plan: RayPlan) -> None:
    """Record the results as they come, here; fail when none arrive for ``timeout_s``."""
    pump = _Pump(dataset)
    pump.thread.start()
    try:
        while True:
            try:
                kind, item = pump.batches.get(timeout=timeout_s)
            except queue.Empty:
                raise ScanError(
                    f"the Ray scan made no progress for {timeout_s:g} s ({job.decided} of {len(job.todo)} listings "
                    f"written; {plan.num_actors} actors of {plan.actor_cpus:g} CPU / {plan.actor_gpus:g} GPU on a "
                    f"cluster of {plan.cluster_cpus:g} CPUs, {plan.cluster_gpus:g} GPUs); results so far are kept in "
                    f"{job.store.path}: run the scan again to resume, with fewer actors or a longer timeout"
                ) from None
            if kind == "end":
                return
            if kind == "error":
                raise ScanError(f"the Ray scan failed: {_short(item)}") from item
            verdicts = [pickle.loads(blob) for blob in item["verdict"]]
            job.record(verdicts)
            bar.advance(len(verdicts))
    finally:
        pump.close()


def _short(exc: BaseException, limit: int = 1000) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _decode_batch(batch: dict[str, np.ndarray], *, limits: dict[str, Any]) -> dict[str, np.ndarray]:
    """A Ray task: decode the photos of a few listings (unreadable ones are recorded, as in the local scan)."""
    decoded = [pickle.dumps(decode_listing(pickle.loads(blob), **limits), protocol=5) for blob in batch["listing"]]
    return {"i": batch["i"], "listing": batch["listing"], "decoded": _objects(decoded)}


def _objects(values: Sequence[Any]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


class _DecideActor:
    """A Ray actor: loads the embedder, the index and a detector once, then embeds and decides batches."""

    def __init__(self, payload_box: list[Any]):
        import ray

        from knockoff.embedders.base import create_embedder

        payload = ray.get(payload_box[0])
        embedder = payload["embedder"]
        if isinstance(embedder, str):
            embedder = create_embedder(embedder)
        index = ReferenceIndex.from_state(payload["state"], embedder)
        self.detector = Detector(index, payload["policy"], **payload["detector"])

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = [(pickle.loads(l), pickle.loads(d)) for l, d in zip(batch["listing"], batch["decoded"])]
        verdicts = self.detector.check_decoded(items)
        return {"i": batch["i"], "verdict": _objects([pickle.dumps(v, protocol=5) for v in verdicts])}
