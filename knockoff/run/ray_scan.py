"""The batch scan on Ray Data: the same results as :func:`knockoff.scan.scan`, spread over a Ray cluster.

Listings are decoded in parallel Ray tasks, then embedded and decided in a fixed pool of actors that each load
the embedder and the detector once (one GPU each when the cluster has GPUs and the engine uses them); the
index travels once through the object store. The driver writes ``results.jsonl`` exactly as the local scan
does (same lines, same resume: listings already in the file are skipped, a torn last line is cut off), in
listing order.

Ray is an optional extra (``pip install 'knockoff[ray]'``); this module imports it only when a scan starts.
The pool is sized from the cluster's resources and always leaves at least one CPU to the decoding tasks: a
pool that holds every CPU starves them and the pipeline stalls. A scan never waits forever: when no result
arrives for ``timeout_s`` seconds it stops with a :class:`KnockoffError`; what was written stays, and
running the scan again resumes.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knockoff.catalog.readers import Listing
from knockoff.decide.detector import DEFAULT_MAX_SIDE, Detector, decode_listing
from knockoff.catalog.images import DEFAULT_MAX_PIXELS
from knockoff.errors import ConfigError, ScanError
from knockoff.match.index import ReferenceIndex, _check_same_embedder
from knockoff.decide.policy import Policy
from knockoff.run.scan import (
    RESULTS_FILE,
    ScanSummary,
    _load_index,
    _open_results,
    _Progress,
    collect_listings,
    decide_batch,
    start_output,
)

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
    """Scan a folder like :func:`knockoff.scan.scan`, on Ray; resumable; returns a summary.

    ``address``: a running Ray cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); None starts a
    local Ray instance with ``num_cpus`` logical CPUs (default: twice the cores, at least 4) and stops it
    after. An already initialized Ray connection is used as it is and left open.
    ``workers``: most decoding tasks at once (default: as many as Ray schedules).
    ``batch_size``: listings per actor call. ``num_actors``: the pool size (default: from the resources,
    see :func:`plan_actors`). ``detector``: its policy, image limits and index are used (each actor makes its
    own detector). ``timeout_s``: longest wait for the next results before failing with
    :class:`KnockoffError`.
    """
    started = time.monotonic()
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if timeout_s <= 0:
        raise ConfigError(f"timeout_s must be > 0, got {timeout_s}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if detector is not None:
        index, policy = detector.index, detector.policy
    index = _load_index(index)
    start_output(out, index, folder)  # the same scan.json as the local scan: either engine resumes the other's

    listings, bad_rows = collect_listings(folder, listings_csv)
    results_path = out / RESULTS_FILE
    done, counts = _open_results(results_path)
    already = len(done)
    todo = [listing for listing in listings if listing.listing_id not in done]
    decided = 0
    if todo:
        decided = _run(todo, index, detector, policy, results_path, counts, address=address, num_cpus=num_cpus,
                       num_actors=num_actors, workers=workers, batch_size=batch_size, progress=progress,
                       timeout_s=timeout_s)
    for line in bad_rows:
        log.warning("listings file: %s", line)
    return ScanSummary(out, already + decided, already, decided, dict(counts), tuple(bad_rows),
                       time.monotonic() - started, index.embedder.name)


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise ScanError(
            f"the ray engine needs Ray Data: pip install 'knockoff[ray]' (or 'ray[data]') ({exc})"
        ) from exc
    return ray


def _payload(index: ReferenceIndex, detector: Detector | None, policy: Policy | None) -> dict[str, Any]:
    """What every actor needs, put once in the object store."""
    embedder = index.embedder
    by_name = embedder.kind in _REGISTRY_EMBEDDERS
    return {
        "state": {**index.__getstate__(), "embedder": None},
        "embedder": embedder.name if by_name else embedder,
        "settings": embedder.settings(),
        "policy": policy,
        "detector": {"max_side": detector.max_side, "max_pixels": detector.max_pixels} if detector else {},
    }


def _run(
    todo: list[Listing], index: ReferenceIndex, detector: Detector | None, policy: Policy | None,
    results_path: Path, counts: Counter[str], *, address: str | None, num_cpus: int | None,
    num_actors: int | None, workers: int | None, batch_size: int, progress: bool | None, timeout_s: float,
) -> int:
    ray = _import_ray()
    connected_here = False
    if not ray.is_initialized():
        init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            ray.init(address=address, **init)
        else:
            ray.init(num_cpus=num_cpus or max(4, 2 * (os.cpu_count() or 1)), **init)
        connected_here = True
    context = ray.data.DataContext.get_current()
    saved = (context.execution_options.preserve_order, context.enable_progress_bars)
    bar = _Progress(total=len(todo), enabled=sys.stderr.isatty() if progress is None else progress)
    try:
        plan = plan_actors(ray.cluster_resources(), num_actors=num_actors,
                           use_gpus=index.embedder.kind in _GPU_EMBEDDERS)
        log.info("ray scan of %d listings: %d actors (%g CPU, %g GPU each) on %g CPUs, %g GPUs", len(todo),
                 plan.num_actors, plan.actor_cpus, plan.actor_gpus, plan.cluster_cpus, plan.cluster_gpus)
        context.execution_options.preserve_order = True  # results.jsonl in listing order, as the local scan
        context.enable_progress_bars = False
        payload = ray.put(_payload(index, detector, policy))
        limits = _payload_limits(detector, index)
        items = [{"i": i, "listing": pickle.dumps(listing)} for i, listing in enumerate(todo)]
        blocks = max(1, min(len(items) // _DECODE_BATCH, 4 * int(plan.cluster_cpus)))
        decode_args: dict[str, Any] = {"concurrency": workers} if workers else {}
        dataset = (
            ray.data.from_items(items, override_num_blocks=blocks)
            # the memory reservation (decoded photos) also keeps Ray Data from fusing decoding into the actors
            .map_batches(_decode_batch, fn_kwargs={"limits": limits}, batch_size=_DECODE_BATCH, num_cpus=1,
                         memory=_DECODE_MEMORY, batch_format="numpy", **decode_args)
            .map_batches(_DecideActor, fn_constructor_args=([payload],), batch_size=batch_size,
                         batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=plan.num_actors),
                         num_cpus=plan.actor_cpus, num_gpus=plan.actor_gpus)
        )
        return _write(dataset, results_path, counts, bar, timeout_s, plan, len(todo))
    finally:
        bar.close()
        context.execution_options.preserve_order, context.enable_progress_bars = saved
        if connected_here:
            ray.shutdown()


def _payload_limits(detector: Detector | None, index: ReferenceIndex) -> dict[str, Any]:
    return {
        "min_side": index.embedder.input_size,
        "max_side": detector.max_side if detector else DEFAULT_MAX_SIDE,
        "max_pixels": detector.max_pixels if detector else DEFAULT_MAX_PIXELS,
    }


def _write(dataset: Any, results_path: Path, counts: Counter[str], bar: _Progress, timeout_s: float,
           plan: RayPlan, total: int) -> int:
    """Consume the results in a thread; write them here; fail when none arrive for ``timeout_s``."""
    batches: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=4)
    stop = threading.Event()

    def pump() -> None:
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1):
                while not stop.is_set():
                    try:
                        batches.put(("batch", batch), timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            batches.put(("end", None))
        except BaseException as exc:  # handed to the writing thread, which raises it  # noqa: BLE001
            batches.put(("error", exc))

    thread = threading.Thread(target=pump, name="knockoff-ray-scan", daemon=True)
    thread.start()
    decided = 0
    try:
        with results_path.open("a", encoding="utf-8") as sink:
            while True:
                try:
                    kind, item = batches.get(timeout=timeout_s)
                except queue.Empty:
                    raise ScanError(
                        f"the Ray scan made no progress for {timeout_s:g} s ({decided} of {total} listings written; "
                        f"{plan.num_actors} actors of {plan.actor_cpus:g} CPU / {plan.actor_gpus:g} GPU on a cluster "
                        f"of {plan.cluster_cpus:g} CPUs, {plan.cluster_gpus:g} GPUs); results so far are kept in "
                        f"{results_path}: run the scan again to resume, with fewer actors or a longer timeout"
                    ) from None
                if kind == "end":
                    break
                if kind == "error":
                    raise ScanError(f"the Ray scan failed: {_short(item)}") from item
                lines, verdicts = item["line"], item["verdict"]
                sink.write("".join(str(line) for line in lines))
                sink.flush()
                os.fsync(sink.fileno())
                for verdict in verdicts:
                    counts[str(verdict)] += 1
                decided += len(lines)
                bar.advance(len(lines))
    finally:
        stop.set()
        # let the pump leave the iterator, which stops Ray Data's executor, before Ray may be shut down;
        # bounded: a truly stuck pipeline is left to ray.shutdown()
        thread.join(timeout=_JOIN_S)
    return decided


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
        _check_same_embedder(Path("<shipped index>"), payload["settings"], embedder.settings())
        index = ReferenceIndex._from_state(payload["state"], embedder)
        self.detector = Detector(index, payload["policy"], **payload["detector"])

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = [(pickle.loads(l), pickle.loads(d)) for l, d in zip(batch["listing"], batch["decoded"])]
        verdicts = decide_batch(self.detector, items)
        return {
            "i": batch["i"],
            "line": _objects([json.dumps(v.to_dict(), ensure_ascii=False) + "\n" for v in verdicts]),
            "verdict": _objects([v.verdict for v in verdicts]),
        }


