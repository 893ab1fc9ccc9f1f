"""Text read from photos: the brand name and product words printed on an item.

The reader runs the PP-OCRv6 small detection and recognition models that ship inside the ``rapidocr`` wheel
(Apache-2.0) on onnxruntime (:mod:`knockoff.match.ocr_models`): the model files are loaded by path, so nothing is
ever downloaded. They are imported lazily (``import knockoff`` stays light) and loaded once per process.

When the package is missing or its models cannot be loaded, :func:`read_text` returns a :class:`PhotoText` with
``unavailable`` set to the reason: the caller turns that into an ``unknown`` signal, never a silent ``clear``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from knockoff.errors import ConfigError, ResultError
from knockoff.match.ocr_models import ENGINE_NAME, MODEL_VARIANTS

__all__ = ["ENGINE_NAME", "PhotoText", "engine_key", "TextBox", "TextReadSettings", "TextReading", "box_height", "choose_boxes", "closer_region",
           "detection_size", "read_text", "read_texts", "reader_status", "reread_box", "settings_for_names", "start_reading"]

log = logging.getLogger(__name__)


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
    photos are read much faster shrunk; the detector then rounds each side to a multiple of 32; each line is
    cut from the photo's own pixels, enlarged to that scale, never shrunk);
    ``coarse_side``: the detector first looks at the photo with its longer side this many pixels (at most
    ``max_upscale`` times enlarged), about a third of the pixels of ``det_side``; it looks again at
    ``det_side`` only at the part of the photo where that coarse look saw text it could not box, or boxed
    lower than 40 pixels at ``det_side`` (small print is boxed too loosely to read when seen coarsely), and the
    boxes found there replace the coarse ones (:func:`_detect`). A clean product photo with large print is then
    detected once, at a third of the cost; a shelf photo full of small print costs about what one look at
    ``det_side`` costs. 0: one look, at ``det_side``;
    ``min_height``: boxes lower than this (in ``det_side`` pixels) are not
    read, text too small to read reliably; ``max_boxes``: only the tallest boxes are read (a brand name is
    among the largest text on an item, and reading is most of the cost); ``min_score``: lines the recogniser
    is less sure of are dropped;
    ``threads``: the text detector's onnxruntime threads, and how many lines are recognised at once (each on
    one thread); 0: every CPU this process may use. Idle threads sleep rather than spin, so that a shared CPU
    is not kept busy waiting;
    ``models``: ``int8`` (the default), the detector and recogniser with int8 convolutions and the recogniser's
    output cut to Latin, Greek and Cyrillic letters, digits and signs, derived from the wheel's models once and
    cached (:mod:`knockoff.match.ocr_int8`; about 0.6x their time; when they cannot be derived or loaded, the
    shipped models are used and a warning says why), or ``full``: the models as shipped (which also read CJK);
    ``overlap`` (off by default): a check reads the photos' text while it verifies the photo match
    (:func:`start_reading`), on the cores the match leaves idle, and stops reading when the match alone settles
    the verdict. It can shorten one check on an idle machine, but on 2 busy shared cores it did not speed up a
    scan (0.33x the speed of a scan without text with it and without it in one run, 0.29x against 0.36x in
    another; ``benchmarks/bench_text_scan.py``): reading then competes with the match for the same cores, and a
    reading stopped early is CPU time thrown away. Off, the text is read after the match, only when the verdict
    needs it.
    """

    det_side: int = 640
    max_upscale: float = 2.0
    coarse_side: int = 384
    min_height: int = 10
    max_boxes: int = 8
    min_score: float = 0.5
    threads: int = 0
    overlap: bool = False
    models: str = "int8"

    def __post_init__(self) -> None:
        ints = {"det_side": (64, 2000), "coarse_side": (0, 2000), "min_height": (0, 200), "max_boxes": (1, 10_000), "threads": (0, 1024)}
        for name, (low, high) in ints.items():
            value = getattr(self, name)
            if not _is_int(value) or not low <= value <= high:
                raise ConfigError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
        if not _is_number(self.max_upscale) or not 1.0 <= self.max_upscale <= 4.0:
            raise ConfigError(f"max_upscale must be in [1, 4], got {self.max_upscale!r}")
        if not _is_number(self.min_score) or not 0.0 <= self.min_score < 1.0:
            raise ConfigError(f"min_score must be in [0, 1), got {self.min_score!r}")
        if not isinstance(self.overlap, bool):
            raise ConfigError(f"overlap must be true or false, got {self.overlap!r}")
        if self.models not in MODEL_VARIANTS:
            raise ConfigError(f"models must be one of {', '.join(MODEL_VARIANTS)}, got {self.models!r}")


def settings_for_names(settings: TextReadSettings, names: Iterable[str]) -> TextReadSettings:
    """``settings``, or with the shipped (``"full"``) models when the int8 ones are asked for but cannot write a
    character of one of ``names`` (a catalog brand, an alias, a product name in CJK): a name the reader cannot
    write would never be found, a silent ``clear``. Says so once per name in the log."""
    if settings.models != "int8":
        return settings
    from knockoff.match.ocr_derive import int8_reads  # noqa: PLC0415 (only when int8 models are asked for)

    unwritable = sorted({name for name in names if not int8_reads(name)})
    if not unwritable:
        return settings
    for name in unwritable:
        if name not in _warned_names:
            _warned_names.add(name)
            log.warning("the int8 text models cannot write %r (they keep Latin, Greek and Cyrillic letters only): "
                        "reading with the models as shipped", name)
    return replace(settings, models="full")


_warned_names: set[str] = set()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


EngineKey = tuple[int, str]
_engines: dict[EngineKey, Any] = {}
_failures: dict[EngineKey, str] = {}
_lock = threading.Lock()


def engine_key(settings: TextReadSettings) -> EngineKey:
    """What tells one engine of the process from another: the thread count and the models."""
    return settings.threads, settings.models


def _create_engine(key: EngineKey) -> Any:
    """The OCR models on onnxruntime sessions (raises ImportError/OSError/RuntimeError...): the shipped ones, or
    their derived copies (:mod:`knockoff.match.ocr_int8`), falling back to the shipped ones with a warning when
    those cannot be derived."""
    from knockoff.match import ocr_models  # noqa: PLC0415 (loads onnxruntime)

    threads, variant = key
    if variant == "full":
        return ocr_models.load_models(threads)
    folder = ocr_models.models_dir()
    try:
        from knockoff.match.ocr_int8 import int8_models  # noqa: PLC0415 (needs onnx)

        derived = int8_models(folder / ocr_models.MODEL_FILES["det"], folder / ocr_models.MODEL_FILES["rec"])
    except Exception as exc:  # noqa: BLE001 - any failure to derive falls back to the shipped models, loudly
        log.warning("the %s OCR models could not be derived (%s: %s); reading with the models as shipped",
                    variant, type(exc).__name__, exc)
        return ocr_models.load_models(threads)
    return ocr_models.load_models(threads, derived, variant)


def _engine(settings: TextReadSettings) -> tuple[Any | None, str | None]:
    """The process's engine for these settings, created once; or None and the reason it cannot be."""
    key = engine_key(settings)
    with _lock:
        if getattr(_engines.get(key), "pid", os.getpid()) != os.getpid():
            del _engines[key]  # loaded before this process was forked: its threads are the parent's
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


def _as_bgr_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """The photo as a BGR uint8 array (H, W, 3), the models' channel order."""
    if isinstance(image, Image.Image):
        rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    else:
        rgb = np.asarray(image)
        if rgb.ndim == 2:
            rgb = np.stack([rgb] * 3, axis=-1)
        if rgb.ndim != 3 or rgb.shape[2] not in (3, 4) or rgb.dtype != np.uint8:
            raise ConfigError(f"expected an RGB uint8 image (H, W, 3), got shape {rgb.shape} dtype {rgb.dtype}")
    return np.ascontiguousarray(rgb[:, :, 2::-1])


def detection_size(width: int, height: int, settings: TextReadSettings) -> tuple[int, int]:
    """The size a ``width`` x ``height`` photo is brought to before text is detected: its longer side
    ``det_side``, enlarged at most ``max_upscale`` times (the detector then rounds each side to a multiple of 32)."""
    scale = _scale(width, height, settings.det_side, settings)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _scale(width: int, height: int, side: int, settings: TextReadSettings) -> float:
    """The factor that brings a photo's longer side to ``side``, at most ``max_upscale``."""
    return min(side / max(width, height), settings.max_upscale)


def _sized(bgr: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
    """The photo scaled ``scale`` times (enlarged bicubic, shrunk bilinear), and the factor from its pixels back
    to the original's."""
    height, width = bgr.shape[:2]
    size = max(1, round(width * scale)), max(1, round(height * scale))
    if size == (width, height):
        return bgr, 1.0
    enlarge = size[0] > width
    resample = Image.Resampling.BICUBIC if enlarge else Image.Resampling.BILINEAR
    resized = Image.fromarray(bgr).resize(size, resample, reducing_gap=None if enlarge else 2.0)
    return np.asarray(resized), width / size[0]


def box_height(points: np.ndarray) -> float:
    """A text box's height: the shorter of its two sides across the line (4 x 2 corners, clockwise from
    top-left)."""
    return float(min(np.linalg.norm(points[3] - points[0]), np.linalg.norm(points[2] - points[1])))


def choose_boxes(boxes: Sequence[np.ndarray], min_height: float, max_boxes: int) -> list[int]:
    """Which detected boxes to read, in reading order (top to bottom, then left to right): those at least
    ``min_height`` high, at most ``max_boxes`` of them, the tallest first (a brand name is among the largest text
    on an item, and recognition is most of the cost); ties keep the earlier box."""
    heights = [box_height(np.asarray(b, dtype=np.float32).reshape(4, 2)) for b in boxes]
    tall = sorted((i for i, h in enumerate(heights) if h >= min_height), key=lambda i: (-heights[i], i))
    chosen = tall[:max_boxes]
    return sorted(chosen, key=lambda i: (_line_top(boxes[i]), float(np.asarray(boxes[i])[0][0]), i))


def _line_top(points: np.ndarray) -> int:
    """The box's top in steps of 10 pixels: boxes on one line sort left to right."""
    return int(float(np.asarray(points)[0][1]) // 10)


def _crop(bgr: np.ndarray, points: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The box's content (``points`` in ``bgr``'s pixels), straightened (perspective warp) and scaled ``scale``
    times (bicubic), turned upright when it is taller than wide."""
    import cv2  # noqa: PLC0415 (heavy)

    width = int(scale * max(np.linalg.norm(points[0] - points[1]), np.linalg.norm(points[2] - points[3])))
    height = int(scale * max(np.linalg.norm(points[0] - points[3]), np.linalg.norm(points[1] - points[2])))
    width, height = max(width, 2), max(height, 2)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(points.astype(np.float32), target)
    crop = cv2.warpPerspective(bgr, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(np.rot90(crop)) if height >= 1.5 * width else crop


CLOSER_MARGIN = 64  # pixels (at the det_side scale) around text seen but not boxed that a closer look covers
COARSE_MIN_HEIGHT = 40  # pixels (at the det_side scale): lower boxes found by the coarse look are found again closer


def _in_photo(found: Sequence[np.ndarray], back: float | tuple[float, float],
              offset: tuple[float, float] = (0.0, 0.0)) -> list[np.ndarray]:
    """Boxes found in a scaled photo (or a part of it at ``offset``), in the original photo's pixels; ``back``:
    the original's pixels per scaled pixel (one factor, or one a side)."""
    factor, shift = np.asarray(back, dtype=np.float32), np.asarray(offset, dtype=np.float32)
    return [np.asarray(b, dtype=np.float32).reshape(4, 2) * factor + shift for b in found]


def closer_region(seen: tuple[float, float, float, float], boxes: Sequence[np.ndarray], margin: float,
                  width: int, height: int) -> tuple[int, int, int, int]:
    """The part of a ``width`` x ``height`` photo to look at again, closer: the rectangle ``seen`` (x0, y0, x1, y1)
    grown by ``margin`` on each side, then grown to hold every one of ``boxes`` (4 x 2 corners) it touches, so that
    each box lies wholly inside or wholly outside it; in whole pixels, within the photo."""
    x0, y0, x1, y1 = seen[0] - margin, seen[1] - margin, seen[2] + margin, seen[3] + margin
    grown = True
    while grown:
        grown = False
        for box in boxes:
            (bx0, by0), (bx1, by1) = box.min(axis=0), box.max(axis=0)
            touches = bx0 < x1 and bx1 > x0 and by0 < y1 and by1 > y0
            if touches and (bx0 < x0 or by0 < y0 or bx1 > x1 or by1 > y1):
                x0, y0, x1, y1 = min(x0, bx0), min(y0, by0), max(x1, bx1), max(y1, by1)
                grown = True
    return (max(0, int(np.floor(x0))), max(0, int(np.floor(y0))),
            min(width, int(np.ceil(x1))), min(height, int(np.ceil(y1))))


def _detect(engine: Any, bgr: np.ndarray, settings: TextReadSettings, options: Any = None) -> list[np.ndarray]:
    """The text boxes of the photo (4 x 2 corners in its pixels). The detector first sees the photo scaled to
    ``coarse_side`` (about a third of the pixels); where its map shows text it could not box
    (:meth:`~knockoff.match.ocr_models.OcrModels.detect_checked`), that part of the photo (:func:`closer_region`)
    is detected again scaled to ``det_side`` (:func:`detection_size`), and its boxes replace those found there."""
    height, width = bgr.shape[:2]
    fine = _scale(width, height, settings.det_side, settings)
    coarse = _scale(width, height, settings.coarse_side, settings)
    if not settings.coarse_side or coarse >= fine:
        image, back = _sized(bgr, fine)
        return _in_photo(engine.detect(image, options), back)
    image, back = _sized(bgr, coarse)
    found, unboxed = engine.detect_checked(image, options)
    boxes = _in_photo(found, back)
    seen = [tuple(v * back for v in unboxed)] if unboxed is not None else []
    seen += [(*b.min(axis=0), *b.max(axis=0)) for b in boxes if box_height(b) * fine < COARSE_MIN_HEIGHT]
    if not seen:
        return boxes
    union = (min(r[0] for r in seen), min(r[1] for r in seen), max(r[2] for r in seen), max(r[3] for r in seen))
    region = closer_region(union, boxes, CLOSER_MARGIN / fine, width, height)
    x0, y0, x1, y1 = region
    outside = [b for b in boxes if not (b[:, 0].min() < x1 and b[:, 0].max() > x0 and b[:, 1].min() < y1
                                        and b[:, 1].max() > y0)]
    part, offset, part_back = _scaled_part(bgr, fine, region)
    return outside + _in_photo(engine.detect(part, options), part_back, offset)


Part = tuple[np.ndarray, tuple[float, float], tuple[float, float]]


def _scaled_part(bgr: np.ndarray, scale: float, region: tuple[int, int, int, int]) -> Part:
    """The part of the photo scaled ``scale`` times (as :func:`_sized` scales it) that holds ``region`` (x0, y0,
    x1, y1 in the photo's pixels), its sides grown to multiples of 32 scaled pixels where the photo allows (the
    detector takes such sides; any other side it would stretch); the part's top left in the photo's pixels; and
    the photo's pixels per scaled pixel, across and down."""
    height, width = bgr.shape[:2]
    full = max(1, round(width * scale)), max(1, round(height * scale))
    edges = []
    for axis, (low, high) in enumerate(((region[0], region[2]), (region[1], region[3]))):
        start = int(low * scale) // 32 * 32
        end = min(full[axis], -(-int(np.ceil(high * scale)) // 32) * 32)
        start = max(0, min(start, end - 32))  # a part on the photo's far edge keeps a side of 32 where it can
        edges.append((start, end))
    (sx0, sx1), (sy0, sy1) = edges
    back = (width / full[0], height / full[1])
    box = (sx0 * back[0], sy0 * back[1], sx1 * back[0], sy1 * back[1])
    enlarge = scale > 1.0
    resample = Image.Resampling.BICUBIC if enlarge else Image.Resampling.BILINEAR
    part = Image.fromarray(bgr).resize((sx1 - sx0, sy1 - sy0), resample, box=box)
    return np.asarray(part), (box[0], box[1]), back


def _read(engine: Any, bgr: np.ndarray, settings: TextReadSettings, options: Any = None) -> tuple[TextBox, ...]:
    """Find the text boxes (:func:`_detect`); choose those to read by their heights in the photo scaled to
    ``det_side``, and recognise each from the photo's own pixels enlarged to that scale (never shrunk); boxes in
    the original's pixels. ``options``: the engine's run options (to stop it)."""
    height, width = bgr.shape[:2]
    scale = _scale(width, height, settings.det_side, settings)
    boxes = _detect(engine, bgr, settings, options)
    chosen = [boxes[i] for i in choose_boxes([b * scale for b in boxes], settings.min_height, settings.max_boxes)]
    read = engine.recognise([_crop(bgr, points, max(1.0, scale)) for points in chosen], options)
    kept = []
    for points, (text, score) in zip(chosen, read):
        if text and score >= settings.min_score:
            kept.append(TextBox(text, score, tuple((float(x), float(y)) for x, y in points)))  # type: ignore[arg-type]
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
    return _read_photo(engine, image, settings)


MIN_SIDE = 8  # pixels: a photo with a shorter side is not read (its text is unknown, not absent)


def _read_photo(engine: Any, image: Image.Image | np.ndarray, settings: TextReadSettings,
                options: Any = None) -> PhotoText:
    bgr = _as_bgr_array(image)
    if min(bgr.shape[:2]) < MIN_SIDE:
        height, width = bgr.shape[:2]
        return PhotoText((), _name(engine), unavailable=f"the photo is {width}x{height} pixels, too small to read text in")
    return PhotoText(_read(engine, bgr, settings, options), _name(engine))


def _name(engine: Any) -> str:
    """The name of the models that read the text (the shipped ones, or which derived copy)."""
    return str(getattr(engine, "name", ENGINE_NAME))


def read_texts(
    images: Sequence[Image.Image | np.ndarray], settings: TextReadSettings | None = None
) -> tuple[PhotoText, ...]:
    """:func:`read_text` of each photo."""
    return tuple(read_text(image, settings) for image in images)


def _views(crop: np.ndarray) -> list[np.ndarray]:
    """Other views of one text line's pixels: with a margin of a quarter of its height, in grey, and 0.7x
    smaller. What is printed reads the same in each; a recogniser's slip on a stylised letter often does not."""
    import cv2  # noqa: PLC0415 (heavy)

    margin = max(1, crop.shape[0] // 4)
    padded = cv2.copyMakeBorder(crop, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
    grey = cv2.cvtColor(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    smaller = cv2.resize(crop, (max(2, round(crop.shape[1] * 0.7)), max(2, round(crop.shape[0] * 0.7))),
                         interpolation=cv2.INTER_AREA)
    return [padded, grey, smaller]


def reread_box(image: Image.Image | np.ndarray, box: TextBox,
               settings: TextReadSettings | None = None) -> tuple[str, ...]:
    """The line in ``box`` (of ``image``, the photo it was read from) read again from three other views of
    its pixels (:func:`_views`); () when no text reader can be loaded. Used to confirm a reading before a
    verdict rests on a single letter of it."""
    engine, _ = _engine(settings or TextReadSettings())
    if engine is None:
        return ()
    crop = _crop(_as_bgr_array(image), np.asarray(box.box, dtype=np.float32))
    return tuple(text for text, _score in engine.recognise(_views(crop)))


_pool: tuple[int, ThreadPoolExecutor] | None = None  # (process id, the threads that run background readings)
READING_THREADS = 4  # readings in flight at once (one a listing being checked); more wait for a thread


def _reading_pool() -> ThreadPoolExecutor:
    """This process's threads for :class:`TextReading` (a forked child makes its own)."""
    global _pool  # noqa: PLW0603 - one pool a process, created on first use
    with _lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(READING_THREADS, thread_name_prefix="knockoff-text-read"))
        return _pool[1]


class TextReading:
    """The text of a listing's photos, read in a background thread (:func:`start_reading`). :meth:`result` waits
    for it; :meth:`cancel` stops it: the onnxruntime run in progress is terminated and no further photo is read
    (a cancelled reading has no result)."""

    def __init__(self, images: Sequence[Image.Image | np.ndarray], settings: TextReadSettings | None = None):
        self._settings = settings or TextReadSettings()
        self._stopped = threading.Event()
        self._options: Any = None
        self._future: Future[tuple[PhotoText, ...] | None] = _reading_pool().submit(self._run, list(images))

    def _run(self, images: list[Image.Image | np.ndarray]) -> tuple[PhotoText, ...] | None:
        engine, reason = _engine(self._settings)
        if engine is None:
            return tuple(PhotoText((), ENGINE_NAME, unavailable=reason) for _ in images)
        self._options = engine.run_options()
        if self._stopped.is_set():  # cancelled before the options were there to terminate
            return None
        texts = []
        try:
            for image in images:
                if self._stopped.is_set():
                    return None
                texts.append(_read_photo(engine, image, self._settings, self._options))
        except Exception:
            if self._stopped.is_set():  # the run was terminated on purpose
                return None
            raise
        return tuple(texts)

    def result(self) -> tuple[PhotoText, ...]:
        """Each photo's text (waits for the reading; raises what reading raised)."""
        texts = self._future.result()
        if texts is None:
            raise ResultError("the text reading was cancelled before it finished")
        return texts

    def cancel(self) -> None:
        """Stop reading (nothing when it has finished)."""
        self._stopped.set()
        options = self._options
        if options is not None:
            options.terminate = True

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._stopped.is_set()


def start_reading(images: Sequence[Image.Image | np.ndarray],
                  settings: TextReadSettings | None = None) -> TextReading:
    """Start reading the text of ``images`` in a background thread (:class:`TextReading`), so that a check can
    verify its photo match meanwhile; photos are read one after the other, as :func:`read_texts` reads them."""
    return TextReading(images, settings)
