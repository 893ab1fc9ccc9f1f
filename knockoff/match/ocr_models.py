"""The text detector and recogniser behind :mod:`knockoff.match.text`: the PP-OCRv6 small models that ship in
the ``rapidocr`` wheel, run on onnxruntime sessions that knockoff creates itself (one per model and thread count,
once per process), with rapidocr's own post-processing (DB boxes, CTC decoding).

Calling the two models directly rather than through ``rapidocr.RapidOCR`` avoids its per-call work that the
reader does not need (image re-loading and re-sizing, cropping every detected box before the ones worth reading
are chosen) and lets the sessions be set up for a shared CPU: intra-op threads that sleep instead of spinning
when idle, a memory arena (buffers kept from one photo to the next), and a recogniser with one thread per call
whose calls (one per text line) run side by side.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from knockoff.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["ENGINE_NAME", "MODEL_FILES", "MODEL_VARIANTS", "UNBOXED_THRESHOLD", "OcrModels", "det_input", "det_size",
           "load_models", "models_dir", "rec_input", "unboxed_text"]

MODEL_FILES = {"det": "PP-OCRv6_det_small.onnx", "rec": "PP-OCRv6_rec_small.onnx"}
ENGINE_NAME = "rapidocr:PP-OCRv6-small"  # the models as shipped; derived copies add a suffix (":int8")
MODEL_VARIANTS = ("int8", "full")
REC_HEIGHT = 48
REC_MIN_WIDTH = 320  # the recogniser's training width: narrower lines are padded to it (narrower reads worse)
Region = tuple[float, float, float, float]  # x0, y0, x1, y1 (x1, y1 exclusive)
DET_MULTIPLE = 32  # the detector's input sides are multiples of this
UNBOXED_THRESHOLD = 0.1  # text map probability that counts as text seen (the boxes are drawn at 0.3)
SMALL_CROP_SIDE = 30  # rapidocr's Global.min_side_len: smaller images (text lines) are enlarged to it
# rapidocr's default DB post-processing (its config.yaml, Det section)
DB_SETTINGS: dict[str, Any] = {"thresh": 0.3, "box_thresh": 0.5, "max_candidates": 1000, "unclip_ratio": 1.6,
               "use_dilation": True, "score_mode": "fast"}


def _session(path: Path | bytes, threads: int) -> Any:
    import onnxruntime as ort  # noqa: PLC0415 (heavy, optional)

    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.enable_cpu_mem_arena = True  # rapidocr turns it off; on, a 640-px detection costs ~18 % less CPU
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads sleep
    source = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


def effective_threads(threads: int) -> int:
    """The thread count ``threads`` stands for: itself, or (0) every CPU this process may use."""
    if threads > 0:
        return threads
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass
class OcrModels:
    """The detector's and recogniser's sessions, their post-processing, the pool that runs recognition calls
    side by side (None with one thread), and the process that loaded them (a forked child must load its own:
    the sessions' and the pool's threads stay in the parent)."""

    det: Any
    rec: Any
    boxes_from_map: Any
    decode: Any
    threads: int
    pool: ThreadPoolExecutor | None
    pid: int = field(default_factory=os.getpid)
    name: str = ENGINE_NAME

    @staticmethod
    def run_options() -> Any:
        """New onnxruntime run options: setting their ``terminate`` from another thread stops the runs given them
        (they then raise)."""
        import onnxruntime as ort  # noqa: PLC0415 (heavy, optional; loaded with the models)

        return ort.RunOptions()

    def detect(self, image: np.ndarray, options: Any = None) -> np.ndarray:
        """Text boxes (N x 4 x 2 corner points, clockwise from top-left, float32) in ``image``'s pixels (BGR uint8).
        The detector sees the image resized to sides that are multiples of 32 (:func:`det_size`), as in rapidocr.
        ``options``: :meth:`run_options` to run with (None: the defaults)."""
        return self.detect_checked(image, options)[0]

    def detect_checked(self, image: np.ndarray, options: Any = None,
                       threshold: float = UNBOXED_THRESHOLD) -> tuple[np.ndarray, Region | None]:
        """:meth:`detect`'s boxes, and the region (x0, y0, x1, y1 in ``image``'s pixels) where the detector's text
        map shows text that no box holds (:func:`unboxed_text`), None where it shows none: text too small, or too
        crowded, for the detector to box at this size."""
        height, width = image.shape[:2]
        tensor = det_input(image)
        name = self.det.get_inputs()[0].name
        preds = self.det.run(None, {name: tensor}, options)[0]
        boxes, _scores = self.boxes_from_map(preds, (height, width))  # mapped back to the image's pixels
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4, 2)
        to_map = np.array([preds.shape[3] / width, preds.shape[2] / height], dtype=np.float32)
        region = unboxed_text(preds[0, 0], boxes * to_map, threshold)
        if region is None:
            return boxes, None
        x0, y0, x1, y1 = region
        return boxes, (x0 / to_map[0], y0 / to_map[1], x1 / to_map[0], y1 / to_map[1])

    def recognise(self, crops: list[np.ndarray], options: Any = None) -> list[tuple[str, float]]:
        """The text of each crop (a text line, BGR uint8) and the recogniser's confidence in [0, 1]."""
        if self.pool is None or len(crops) < 2:
            return [self._recognise_one(c, options) for c in crops]
        return list(self.pool.map(self._recognise_one, crops, [options] * len(crops)))

    def _recognise_one(self, crop: np.ndarray, options: Any = None) -> tuple[str, float]:
        tensor, ratio = rec_input(crop)
        name = self.rec.get_inputs()[0].name
        preds = self.rec.run(None, {name: tensor}, options)[0]
        lines, _words = self.decode(preds, False, wh_ratio_list=[ratio], max_wh_ratio=tensor.shape[3] / REC_HEIGHT)
        text, score = lines[0]
        return str(text).strip(), min(1.0, max(0.0, float(score)))


def unboxed_text(text_map: np.ndarray, boxes: np.ndarray, threshold: float = UNBOXED_THRESHOLD) -> Region | None:
    """Where the detector's text map (H x W probabilities) exceeds ``threshold`` outside the ``boxes`` found in it
    (N x 4 x 2 corners in the map's pixels): the bounding rectangle (x0, y0, x1, y1; x1, y1 exclusive) of those
    pixels, or None. The boxes are drawn from the map at a higher threshold (0.3) and enlarged, so they hold
    their own text; what is left is text the detector saw but could not box at this size (small print, or lines
    run together), which a closer look may read."""
    import cv2  # noqa: PLC0415 (heavy)

    outside = (text_map > threshold).astype(np.uint8)
    if len(boxes):
        cv2.fillPoly(outside, [np.round(b).astype(np.int32) for b in boxes], 0)
    ys, xs = np.nonzero(outside)
    if not len(xs):
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def small_crop_size(width: int, height: int) -> tuple[int, int] | None:
    """The size rapidocr gives a text line whose shorter side is under 30 pixels before recognising it (that side
    brought to 30, both then rounded to multiples of 32), or None for a crop it leaves alone. Kept so that the
    lines read are those rapidocr's own pipeline reads."""
    if min(width, height) >= SMALL_CROP_SIDE:
        return None
    scale = SMALL_CROP_SIDE / min(width, height)
    return (max(DET_MULTIPLE, round(int(width * scale) / DET_MULTIPLE) * DET_MULTIPLE),
            max(DET_MULTIPLE, round(int(height * scale) / DET_MULTIPLE) * DET_MULTIPLE))


def rec_input(crop: np.ndarray) -> tuple[np.ndarray, float]:
    """A text line as the recogniser takes it: 48 pixels high, its width kept in proportion, padded on the right
    to at least 320 (what PaddleOCR and rapidocr do); and its width / height ratio."""
    import cv2  # noqa: PLC0415 (heavy)

    small = small_crop_size(crop.shape[1], crop.shape[0])
    if small is not None:
        crop = cv2.resize(crop, small)
    height, width = crop.shape[:2]
    ratio = width / float(max(height, 1))
    padded = max(REC_MIN_WIDTH, int(REC_HEIGHT * ratio))
    resized_w = min(padded, max(1, math.ceil(REC_HEIGHT * ratio)))
    resized = cv2.resize(crop, (resized_w, REC_HEIGHT)).astype(np.float32)
    tensor = np.zeros((1, 3, REC_HEIGHT, padded), dtype=np.float32)
    tensor[0, :, :, :resized_w] = resized.transpose(2, 0, 1) / 127.5 - 1.0
    return tensor, ratio


def det_input(image: np.ndarray) -> np.ndarray:
    """A photo (BGR uint8) as the detector takes it: resized to :func:`det_size`, scaled to [-1, 1], 1 x 3 x H x W."""
    import cv2  # noqa: PLC0415 (heavy)

    height, width = image.shape[:2]
    size = det_size(width, height)
    resized = image if size == (width, height) else cv2.resize(image, size)
    return np.ascontiguousarray(((resized.astype(np.float32) / 127.5) - 1.0).transpose(2, 0, 1)[None])


def det_size(width: int, height: int) -> tuple[int, int]:
    """The detector's input size for a ``width`` x ``height`` image: each side rounded to a multiple of 32 (at
    least 32)."""
    return (max(DET_MULTIPLE, round(width / DET_MULTIPLE) * DET_MULTIPLE),
            max(DET_MULTIPLE, round(height / DET_MULTIPLE) * DET_MULTIPLE))


def models_dir() -> Path:
    """The folder of the models in the rapidocr wheel (raises ImportError, or ConfigError when one is missing)."""
    import rapidocr  # noqa: PLC0415 (heavy, optional)

    models = Path(rapidocr.__file__).resolve().parent / "models"
    missing = [name for name in MODEL_FILES.values() if not (models / name).is_file()]
    if missing:
        raise ConfigError(f"rapidocr's bundled models are missing from {models}: {', '.join(missing)}")
    return models


def load_models(threads: int, derived: Mapping[str, bytes] | None = None, variant: str = "full") -> OcrModels:
    """The models in the rapidocr wheel on new sessions (raises ImportError / ConfigError / onnxruntime errors).
    ``threads``: the detector's intra-op threads and the recognition calls run at once (0: every CPU).
    ``derived``: serialised models ("det", "rec") to run instead of the wheel's, named ``variant``
    (:mod:`knockoff.match.ocr_int8`); when their sessions cannot be created, the wheel's are loaded and a
    warning says why."""
    models = models_dir()
    count = effective_threads(threads)
    if derived:
        try:
            return _loaded(derived["det"], derived["rec"], count, f"{ENGINE_NAME}:{variant}")
        except Exception as exc:  # noqa: BLE001 - any failure falls back to the shipped models, loudly
            log.warning("the %s OCR models could not be loaded (%s: %s); reading with the models as shipped",
                        variant, type(exc).__name__, exc)
    return _loaded(models / MODEL_FILES["det"], models / MODEL_FILES["rec"], count, ENGINE_NAME)


def _loaded(det_model: Path | bytes, rec_model: Path | bytes, count: int, name: str) -> OcrModels:
    from rapidocr.ch_ppocr_det.utils import DBPostProcess  # noqa: PLC0415 (heavy, optional)
    from rapidocr.ch_ppocr_rec.utils import CTCLabelDecode  # noqa: PLC0415

    det = _session(det_model, count)
    rec = _session(rec_model, 1)
    meta = rec.get_modelmeta().custom_metadata_map
    if "character" not in meta:
        raise ConfigError(f"the recogniser ({name}) carries no character list")
    decode = CTCLabelDecode(character=meta["character"].splitlines())
    pool = ThreadPoolExecutor(count, thread_name_prefix="knockoff-ocr") if count > 1 else None
    return OcrModels(det, rec, DBPostProcess(**DB_SETTINGS), decode, count, pool, name=name)
