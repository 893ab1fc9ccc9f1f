"""Text read from photos: the brand name and product words printed on an item.

The reader is RapidOCR (``rapidocr``, Apache-2.0) on onnxruntime, with the PP-OCRv6 small detection and
recognition models that ship inside its wheel: the model files are given to it by path, so it never downloads
anything. It is imported lazily (``import knockoff`` stays light) and created once per process.

When the package is missing or its models cannot be loaded, :func:`read_text` returns a :class:`PhotoText` with
``unavailable`` set to the reason: the caller turns that into an ``unknown`` signal, never a silent ``clear``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from knockoff.errors import ConfigError, ResultError

__all__ = ["ENGINE_NAME", "PhotoText", "TextBox", "TextReadSettings", "read_text", "read_texts", "reader_status"]

log = logging.getLogger(__name__)

ENGINE_NAME = "rapidocr:PP-OCRv6-small"
_MODEL_FILES = {"Det": "PP-OCRv6_det_small.onnx", "Rec": "PP-OCRv6_rec_small.onnx",
                "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx"}

Point = tuple[float, float]


@dataclass(frozen=True)
class TextBox:
    """One line of text read from a photo: the text, the recogniser's confidence in [0, 1], and its box as
    four corner points (clockwise from top-left) in the original photo's pixel coordinates."""

    text: str
    score: float
    box: tuple[Point, Point, Point, Point]

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise ResultError(f"text must be a string, got {type(self.text).__name__}")
        if not 0.0 <= float(self.score) <= 1.0:
            raise ResultError(f"score must be in [0, 1], got {self.score!r}")
        box = tuple((float(x), float(y)) for x, y in self.box)
        if len(box) != 4:
            raise ResultError(f"box must have 4 corner points, got {len(box)}")
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "score", float(self.score))

    def to_dict(self) -> dict[str, Any]:
        box = [[round(x, 1), round(y, 1)] for x, y in self.box]
        return {"text": self.text, "score": round(self.score, 4), "box": box}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextBox:
        return cls(str(d["text"]), float(d["score"]), tuple(tuple(p) for p in d["box"]))  # type: ignore[arg-type]


@dataclass(frozen=True)
class PhotoText:
    """The text read from one photo. ``unavailable`` is the reason the text could not be read (no OCR engine,
    a model that failed to load, ...); then ``boxes`` is empty and means nothing."""

    boxes: tuple[TextBox, ...]
    engine: str
    unavailable: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", tuple(self.boxes))
        if self.unavailable is not None and self.boxes:
            raise ResultError("a PhotoText whose text is unavailable cannot hold boxes")

    @property
    def available(self) -> bool:
        return self.unavailable is None

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(b.text for b in self.boxes)

    def to_dict(self) -> dict[str, Any]:
        return {"engine": self.engine, "unavailable": self.unavailable, "boxes": [b.to_dict() for b in self.boxes]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PhotoText:
        return cls(tuple(TextBox.from_dict(b) for b in d.get("boxes", ())), str(d["engine"]), d.get("unavailable"))


@dataclass(frozen=True)
class TextReadSettings:
    """How text is read.

    ``det_side``: the photo is resized so that its longer side is this many pixels before text is detected
    and read (enlarged at most ``max_upscale`` times: small shop photos read better a little enlarged, large
    photos are read much faster shrunk); ``min_height``: boxes lower than this (in those pixels) are not
    read, text too small to read reliably; ``max_boxes``: only the tallest boxes are read (a brand name is
    among the largest text on an item, and reading is most of the cost); ``min_score``: lines the recogniser
    is less sure of are dropped;
    ``threads``: onnxruntime threads (0: onnxruntime's default, all cores).
    """

    det_side: int = 640
    max_upscale: float = 2.0
    min_height: int = 10
    max_boxes: int = 8
    min_score: float = 0.5
    threads: int = 0

    def __post_init__(self) -> None:
        ints = {"det_side": (64, 2000), "min_height": (0, 200), "max_boxes": (1, 10_000), "threads": (0, 1024)}
        for name, (low, high) in ints.items():
            value = getattr(self, name)
            if not _is_int(value) or not low <= value <= high:
                raise ConfigError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
        if not _is_number(self.max_upscale) or not 1.0 <= self.max_upscale <= 4.0:
            raise ConfigError(f"max_upscale must be in [1, 4], got {self.max_upscale!r}")
        if not _is_number(self.min_score) or not 0.0 <= self.min_score < 1.0:
            raise ConfigError(f"min_score must be in [0, 1), got {self.min_score!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_engines: dict[int, Any] = {}
_failures: dict[int, str] = {}
_lock = threading.Lock()


def _create_engine(threads: int) -> Any:
    """A RapidOCR engine on the models bundled in its wheel (raises ImportError/OSError/RuntimeError...)."""
    import rapidocr  # noqa: PLC0415 (heavy, optional)

    models = Path(rapidocr.__file__).resolve().parent / "models"
    missing = [name for name in _MODEL_FILES.values() if not (models / name).is_file()]
    if missing:
        raise ConfigError(f"rapidocr's bundled models are missing from {models}: {', '.join(missing)}")
    params: dict[str, Any] = {f"{stage}.model_path": str(models / name) for stage, name in _MODEL_FILES.items()}
    params.update({
        "Global.log_level": "error", "Global.use_cls": False, "Global.text_score": 0.0,
        "Det.limit_type": "max", "Det.limit_side_len": 2000,  # read_text sizes the photo itself
        "EngineConfig.onnxruntime.intra_op_num_threads": threads if threads > 0 else -1,
    })
    return rapidocr.RapidOCR(params=params)


def _engine(settings: TextReadSettings) -> tuple[Any | None, str | None]:
    """The process's engine for these settings, created once; or None and the reason it cannot be."""
    key = settings.threads
    with _lock:
        if key in _engines:
            return _engines[key], None
        if key in _failures:
            return None, _failures[key]
        try:
            _engines[key] = _create_engine(key)
        except ImportError as exc:
            _failures[key] = f"text reading needs the rapidocr package (pip install rapidocr onnxruntime): {exc}"
        except Exception as exc:  # noqa: BLE001 - any failure to load the models is reported, not raised
            _failures[key] = f"the text reader could not be loaded: {type(exc).__name__}: {exc}"
        if key in _failures:
            log.warning("%s", _failures[key])
            return None, _failures[key]
        return _engines[key], None


def reader_status(settings: TextReadSettings | None = None) -> str | None:
    """None when text can be read, else the reason it cannot (loads the engine once)."""
    return _engine(settings or TextReadSettings())[1]


def _as_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or array.dtype != np.uint8:
        raise ConfigError(f"expected an RGB uint8 image (H, W, 3), got shape {array.shape} dtype {array.dtype}")
    return array[:, :, :3]


def _resize(rgb: np.ndarray, settings: TextReadSettings) -> tuple[np.ndarray, float]:
    """The photo sized for detection, and the factor from its pixels back to the original's."""
    height, width = rgb.shape[:2]
    scale = min(settings.det_side / max(height, width), settings.max_upscale)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == (width, height):
        return rgb, 1.0
    resample = Image.Resampling.BILINEAR if scale < 1 else Image.Resampling.BICUBIC
    resized = np.asarray(Image.fromarray(rgb).resize(size, resample, reducing_gap=2.0 if scale < 1 else None))
    return resized, width / size[0]


def _detect(engine: Any, bgr: np.ndarray, settings: TextReadSettings) -> list[np.ndarray]:
    """The text boxes (4 x 2 corner points, detection pixels) worth reading: tall enough, the tallest first,
    at most ``settings.max_boxes`` (a brand name is among the largest text on an item)."""
    output = engine(bgr, use_det=True, use_cls=False, use_rec=False)
    if getattr(output, "boxes", None) is None:
        return []
    boxes = [np.asarray(b, dtype=np.float32).reshape(4, 2) for b in output.boxes]
    heights = [min(np.linalg.norm(b[3] - b[0]), np.linalg.norm(b[2] - b[1])) for b in boxes]
    order = sorted((i for i, h in enumerate(heights) if h >= settings.min_height), key=lambda i: -heights[i])
    return [boxes[i] for i in sorted(order[: settings.max_boxes])]


def _crop(bgr: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The box's content, straightened (perspective warp), turned upright when it is taller than wide."""
    import cv2  # noqa: PLC0415 (heavy)

    width = int(max(np.linalg.norm(points[0] - points[1]), np.linalg.norm(points[2] - points[3])))
    height = int(max(np.linalg.norm(points[0] - points[3]), np.linalg.norm(points[1] - points[2])))
    width, height = max(width, 2), max(height, 2)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(points.astype(np.float32), target)
    crop = cv2.warpPerspective(bgr, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(np.rot90(crop)) if height >= 1.5 * width else crop


def _recognise(engine: Any, crop: np.ndarray) -> tuple[str, float]:
    output = engine(crop, use_det=False, use_cls=False, use_rec=True)
    texts, scores = getattr(output, "txts", None), getattr(output, "scores", None)
    if not texts or not scores:
        return "", 0.0
    return str(texts[0]).strip(), min(1.0, max(0.0, float(scores[0])))


def _read(engine: Any, rgb: np.ndarray, settings: TextReadSettings) -> tuple[TextBox, ...]:
    """Detect on the photo sized for detection; recognise each kept box from the sharper of the original
    and the sized photo; boxes in the original's pixels."""
    sized, back = _resize(rgb, settings)
    bgr = np.ascontiguousarray(sized[:, :, ::-1])
    source, factor = (np.ascontiguousarray(rgb[:, :, ::-1]), back) if back > 1.0 else (bgr, 1.0)
    kept = []
    for points in _detect(engine, bgr, settings):
        text, score = _recognise(engine, _crop(source, points * factor))
        if text and score >= settings.min_score:
            corners = tuple((float(x) * back, float(y) * back) for x, y in points)
            kept.append(TextBox(text, score, corners))  # type: ignore[arg-type]
    return tuple(kept)


def read_text(image: Image.Image | np.ndarray, settings: TextReadSettings | None = None) -> PhotoText:
    """Read the text printed in a photo (a PIL image or an RGB uint8 array).

    Returns the lines read with their confidence and their boxes in the original photo's pixels, or, when no
    text reader is installed or loadable, an empty :class:`PhotoText` whose ``unavailable`` says why.
    """
    settings = settings or TextReadSettings()
    engine, reason = _engine(settings)
    if engine is None:
        return PhotoText((), ENGINE_NAME, unavailable=reason)
    rgb = _as_rgb_array(image)
    if min(rgb.shape[:2]) < 8:
        return PhotoText((), ENGINE_NAME)
    with _lock:  # a RapidOCR engine keeps per-call state (use_det, use_rec): one call at a time
        return PhotoText(_read(engine, rgb, settings), ENGINE_NAME)


def read_texts(
    images: Sequence[Image.Image | np.ndarray], settings: TextReadSettings | None = None
) -> tuple[PhotoText, ...]:
    """:func:`read_text` of each photo."""
    return tuple(read_text(image, settings) for image in images)
