"""The OCR reader's own parts: input sizes, which boxes are read, the recogniser's input, and settings that
reach the models (knockoff.match.ocr_models and the reading path of knockoff.match.text)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from knockoff.match import ocr_models
from knockoff.match import text as text_module
from knockoff.match.ocr_models import det_size, effective_threads, rec_input, small_crop_size
from knockoff.match.text import TextReadSettings, box_height, choose_boxes, detection_size, read_text

HAVE_RAPIDOCR = importlib.util.find_spec("rapidocr") is not None


@pytest.mark.parametrize(("size", "settings", "expected"), [
    ((348, 348), TextReadSettings(), (640, 640)),                 # a shelf photo, enlarged 1.84 times
    ((348, 348), TextReadSettings(det_side=480), (480, 480)),
    ((348, 348), TextReadSettings(max_upscale=1.0), (348, 348)),  # never enlarged
    ((200, 100), TextReadSettings(), (400, 200)),                 # enlarged at most twice
    ((1224, 1224), TextReadSettings(), (640, 640)),               # shrunk
    ((1920, 1280), TextReadSettings(), (640, 427)),
    ((2000, 3), TextReadSettings(), (640, 1)),                    # never under 1
])
def test_detection_size(size, settings, expected):
    assert detection_size(*size, settings) == expected


@pytest.mark.parametrize(("size", "expected"), [
    ((640, 640), (640, 640)),
    ((640, 427), (640, 416)),   # 13.3 -> 13
    ((396, 396), (384, 384)),
    ((400, 208), (384, 192)),   # 12.5 -> 12, 6.5 -> 6: round half to even, as rapidocr
    ((10, 10), (32, 32)),       # never under 32
])
def test_det_size(size, expected):
    assert det_size(*size) == expected


@pytest.mark.parametrize(("size", "expected"), [
    ((100, 20), (160, 32)),   # 150 x 30, rounded to multiples of 32
    ((10, 29), (32, 96)),
    ((300, 12), (736, 32)),
    ((30, 30), None),
    ((40, 200), None),
])
def test_small_crop_size(size, expected):
    assert small_crop_size(*size) == expected


def _box(x: float, y: float, w: float, h: float) -> np.ndarray:
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float32)


@pytest.mark.parametrize(("boxes", "min_height", "max_boxes", "expected"), [
    ([_box(0, 0, 50, 20)], 10, 8, [0]),
    ([_box(0, 0, 50, 8)], 10, 8, []),                                           # too low to read
    ([_box(0, 100, 50, 12), _box(0, 0, 50, 30), _box(0, 50, 50, 20)], 10, 2, [1, 2]),  # the two tallest
    ([_box(0, 100, 50, 12), _box(0, 0, 50, 30), _box(0, 50, 50, 20)], 0, 8, [1, 2, 0]),  # reading order
    ([_box(200, 3, 50, 20), _box(0, 0, 50, 20)], 10, 8, [1, 0]),                  # one line: left to right
    ([_box(0, 0, 50, 20), _box(0, 40, 50, 20), _box(0, 80, 50, 20)], 10, 2, [0, 1]),  # ties: the earlier
    ([], 10, 8, []),
])
def test_choose_boxes(boxes, min_height, max_boxes, expected):
    assert choose_boxes(boxes, min_height, max_boxes) == expected


@pytest.mark.parametrize(("box", "expected"), [
    (_box(0, 0, 50, 20), 20.0),
    (np.array([[0, 0], [40, 30], [28, 46], [-12, 16]], dtype=np.float32), 20.0),  # turned 37 degrees
])
def test_box_height(box, expected):
    assert box_height(box) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(("size", "width", "filled"), [
    ((96, 48), 320, 96),      # a short line: padded to the recogniser's 320
    ((480, 48), 480, 480),    # a long one keeps its proportions
    ((100, 20), 320, 240),    # a low one is first enlarged as rapidocr does (160 x 32), then to 48 high
])
def test_rec_input(size, width, filled):
    crop = np.full((size[1], size[0], 3), 255, np.uint8)
    tensor, ratio = rec_input(crop)
    assert tensor.shape == (1, 3, 48, width) and tensor.dtype == np.float32
    assert np.allclose(tensor[..., :filled], 1.0) and np.allclose(tensor[..., filled:], 0.0)
    assert ratio == pytest.approx(size[0] / size[1], rel=0.1)


@pytest.mark.parametrize(("threads", "at_least"), [(1, 1), (3, 3), (0, 1)])
def test_effective_threads(threads, at_least):
    count = effective_threads(threads)
    assert count >= at_least and (threads == 0 or count == threads)


class _FakeModels:
    """Records what the reader gives the models; finds one box (in detection pixels) reading 'ACME'."""

    def __init__(self, score: float = 0.9):
        self.det_shapes: list[tuple[int, ...]] = []
        self.unboxed: list = []  # per detection, the region of text seen but not boxed it reports
        self.box = _box(64, 64, 128, 32)  # in the pixels of the image detected
        self.crops: list[np.ndarray] = []
        self.score = score

    def detect(self, image: np.ndarray, options=None) -> np.ndarray:
        return self.detect_checked(image, options)[0]

    def detect_checked(self, image: np.ndarray, options=None):
        self.det_shapes.append(image.shape)
        unboxed = self.unboxed[len(self.det_shapes) - 1] if len(self.det_shapes) <= len(self.unboxed) else None
        return self.box[None], unboxed

    def recognise(self, crops: list[np.ndarray], options=None) -> list[tuple[str, float]]:
        self.crops.extend(crops)
        return [("ACME", self.score) for _ in crops]


@pytest.fixture
def fake_models(monkeypatch):
    fake = _FakeModels()
    monkeypatch.setattr(text_module, "_engines", {(t, m): fake for t in (0, 1) for m in ("int8", "full")})
    monkeypatch.setattr(text_module, "_failures", {})
    return fake


@pytest.mark.parametrize(("settings", "det_shape"), [
    (TextReadSettings(coarse_side=0), (640, 640, 3)),
    (TextReadSettings(det_side=480, coarse_side=0), (480, 480, 3)),
    (TextReadSettings(max_upscale=1.0, coarse_side=0), (348, 348, 3)),
    (TextReadSettings(det_side=480, threads=1, coarse_side=0), (480, 480, 3)),
    (TextReadSettings(), (384, 384, 3)),  # the coarse look finds the box tall enough and nothing else: done
    (TextReadSettings(coarse_side=500, det_side=480), (480, 480, 3)),  # no coarser than det_side: one look
])
def test_read_settings_reach_the_detector(fake_models, settings, det_shape):
    found = read_text(np.zeros((348, 348, 3), np.uint8), settings)
    assert fake_models.det_shapes == [det_shape]
    scale = 348 / det_shape[0]  # the box comes back in the photo's pixels
    assert found.texts == ("ACME",)
    assert found.boxes[0].box[0] == pytest.approx((64 * scale, 64 * scale))
    assert found.boxes[0].box[2] == pytest.approx((192 * scale, 96 * scale))


def test_large_photos_are_read_from_their_own_pixels(fake_models):
    photo = np.zeros((1280, 1920, 3), np.uint8)
    read_text(photo, TextReadSettings(det_side=640, coarse_side=0))
    assert fake_models.det_shapes == [(427, 640, 3)]
    crop = fake_models.crops[0]  # the box is cut from the full-size photo: 3 times the detection pixels
    assert crop.shape[1] == pytest.approx(128 * 3, abs=2) and crop.shape[0] == pytest.approx(32 * 3, abs=2)


@pytest.mark.parametrize(("min_height", "min_score", "score", "read"), [
    (10, 0.5, 0.9, ("ACME",)),
    (40, 0.5, 0.9, ()),      # the box (32 high in detection pixels) is too low to read
    (10, 0.95, 0.9, ()),     # the recogniser is not sure enough
])
def test_min_height_and_min_score(fake_models, min_height, min_score, score, read):
    fake_models.score = score
    found = read_text(np.zeros((348, 348, 3), np.uint8),
                      TextReadSettings(min_height=min_height, min_score=min_score, coarse_side=0))
    assert found.texts == read
    assert len(fake_models.crops) == (0 if min_height > 32 else 1)


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_threads_reach_the_model_loader(monkeypatch, threads):
    seen = []
    monkeypatch.setattr(text_module, "_engines", {})
    monkeypatch.setattr(text_module, "_failures", {})
    monkeypatch.setattr(ocr_models, "load_models", lambda count, *rest: seen.append(count) or _FakeModels())
    read_text(np.zeros((64, 64, 3), np.uint8), TextReadSettings(threads=threads, models="full"))
    read_text(np.zeros((64, 64, 3), np.uint8), TextReadSettings(threads=threads, models="full"))
    assert seen == [threads]  # loaded once per process, thread count and models


@pytest.mark.skipif(not HAVE_RAPIDOCR, reason="rapidocr is not installed")
@pytest.mark.parametrize("threads", [1, 2])
def test_loaded_sessions_use_the_threads_asked_and_do_not_spin(threads):
    models = ocr_models.load_models(threads)
    det = models.det.get_session_options()
    assert det.intra_op_num_threads == threads
    assert det.get_session_config_entry("session.intra_op.allow_spinning") == "0" and det.enable_cpu_mem_arena
    assert models.rec.get_session_options().intra_op_num_threads == 1
    assert (models.pool is None) == (threads == 1)
    assert models.detect(np.full((100, 70, 3), 255, np.uint8)).shape == (0, 4, 2)  # any size; nothing found
    if models.pool is not None:
        models.pool.shutdown()


def test_models_loaded_before_a_fork_are_loaded_again(monkeypatch):
    inherited = _FakeModels()
    inherited.pid = -1  # loaded by another (the parent) process
    fresh = _FakeModels()
    monkeypatch.setattr(text_module, "_engines", {(0, "full"): inherited})
    monkeypatch.setattr(text_module, "_failures", {})
    monkeypatch.setattr(ocr_models, "load_models", lambda count, *rest: fresh)
    read_text(np.zeros((64, 64, 3), np.uint8), TextReadSettings(models="full"))
    assert fresh.det_shapes and not inherited.det_shapes
    assert text_module._engines == {(0, "full"): fresh}


@pytest.mark.skipif(not HAVE_RAPIDOCR, reason="rapidocr is not installed")
def test_terminated_run_options_stop_detection_and_recognition():
    from knockoff.match.ocr_models import load_models

    models = load_models(1)
    stopped = models.run_options()
    stopped.terminate = True
    with pytest.raises(Exception, match="terminate"):
        models.detect(np.zeros((64, 64, 3), np.uint8), stopped)
    with pytest.raises(Exception, match="terminate"):
        models.recognise([np.zeros((20, 60, 3), np.uint8)] * 2, stopped)
    assert models.detect(np.zeros((64, 64, 3), np.uint8), models.run_options()).shape == (0, 4, 2)  # fresh options run


# -- the coarse look, then a closer one where needed ---------------------------------------------------------


def _map(h: int, w: int, spots: list[tuple[int, int, int, int, float]]) -> np.ndarray:
    text_map = np.zeros((h, w), np.float32)
    for x0, y0, x1, y1, value in spots:
        text_map[y0:y1, x0:x1] = value
    return text_map


@pytest.mark.parametrize(("spots", "boxes", "expected"), [
    ([], [], None),                                                             # no text seen
    ([(10, 10, 30, 20, 0.9)], [_box(5, 5, 30, 20)], None),                       # all of it boxed
    ([(10, 10, 30, 20, 0.9)], [], (10.0, 10.0, 30.0, 20.0)),                     # seen, not boxed
    ([(10, 10, 30, 20, 0.9), (50, 40, 60, 44, 0.2)], [_box(5, 5, 30, 20)], (50.0, 40.0, 60.0, 44.0)),  # faint
    ([(50, 40, 60, 44, 0.05)], [], None),                                        # under the threshold: no text
    ([(0, 0, 4, 4, 0.5), (70, 60, 80, 64, 0.5)], [], (0.0, 0.0, 80.0, 64.0)),    # the rectangle of all of it
])
def test_unboxed_text(spots, boxes, expected):
    found = ocr_models.unboxed_text(_map(64, 96, spots), np.asarray(boxes, np.float32).reshape(-1, 4, 2), 0.1)
    assert found == expected


@pytest.mark.parametrize(("seen", "boxes", "margin", "expected"), [
    ((40, 40, 60, 50), [], 5, (35, 35, 65, 55)),
    ((40, 40, 60, 50), [], 50, (0, 0, 100, 80)),                                # within the photo
    ((40, 40, 60, 50), [_box(60, 42, 30, 6)], 5, (35, 35, 90, 55)),             # grown to hold a box it touches
    ((40, 40, 60, 50), [_box(60, 42, 30, 6), _box(88, 10, 10, 30)], 5, (35, 10, 98, 55)),  # and what that touches
    ((40, 40, 60, 50), [_box(0, 70, 20, 8)], 5, (35, 35, 65, 55)),              # a box it does not touch stays out
    ((40.4, 40.6, 59.2, 50.5), [], 0, (40, 40, 60, 51)),                          # whole pixels, outwards
])
def test_closer_region(seen, boxes, margin, expected):
    assert text_module.closer_region(seen, boxes, margin, 100, 80) == expected


@pytest.mark.parametrize(("shape", "scale", "region"), [
    ((348, 348), 640 / 348, (100, 120, 180, 150)),
    ((348, 348), 640 / 348, (300, 300, 348, 348)),   # on the far edge
    ((1280, 1920), 1 / 3, (0, 0, 1920, 1280)),       # all of it, shrunk
    ((64, 64), 2.0, (10, 10, 12, 12)),
])
def test_scaled_part_is_the_scaled_photo_cut_where_the_detector_takes_it(shape, scale, region):
    rng = np.random.default_rng(0)
    photo = (rng.random((*shape, 3)) * 255).astype(np.uint8)
    part, (left, top), _ = text_module._scaled_part(photo, scale, region)
    full, back = text_module._sized(photo, scale)
    sx, sy = round(left / back), round(top / back)
    assert sx % 32 == 0 and sy % 32 == 0
    assert part.shape[1] % 32 == 0 or sx + part.shape[1] == full.shape[1]
    assert part.shape[0] % 32 == 0 or sy + part.shape[0] == full.shape[0]
    assert left <= region[0] and top <= region[1]
    assert (left + part.shape[1] * back >= region[2] - 1e-6 and top + part.shape[0] * back >= region[3] - 1e-6)
    same = full[sy:sy + part.shape[0], sx:sx + part.shape[1]].astype(int)
    assert np.abs(part.astype(int) - same).mean() < 8  # the same pixels, up to the resampling at the part's edges


def test_a_coarse_look_that_boxes_everything_tall_is_the_only_one(fake_models):
    found = read_text(np.zeros((348, 348, 3), np.uint8), TextReadSettings())
    assert fake_models.det_shapes == [(384, 384, 3)]
    scale = 348 / 384
    assert found.texts == ("ACME",)
    assert found.boxes[0].box[0] == pytest.approx((64 * scale, 64 * scale))
    crop = fake_models.crops[0]  # read at the det_side scale: 640 / 348 times the photo's pixels
    assert crop.shape[1] == pytest.approx(128 * scale * 640 / 348, abs=2)


def test_text_seen_but_not_boxed_is_looked_at_closer_and_its_boxes_replace_those_found_there(fake_models):
    fake_models.unboxed = [(40.0, 40.0, 100.0, 100.0)]  # coarse pixels; the coarse box (64, 64)-(192, 96) touches
    found = read_text(np.zeros((348, 348, 3), np.uint8), TextReadSettings())
    assert fake_models.det_shapes[0] == (384, 384, 3)
    # the part: what was seen and the box it touches, 64 pixels around at 640, grown to multiples of 32
    assert fake_models.det_shapes[1:] == [(256, 320, 3)]
    assert len(found.boxes) == 1  # the coarse box was inside the part: replaced by the one found closer
    assert found.boxes[0].box[0] == pytest.approx((64 * 348 / 640, 64 * 348 / 640), abs=0.5)  # part at (0, 0)


@pytest.mark.parametrize(("height", "looks"), [(30, 1), (24, 1), (23, 2), (8, 2)])
def test_a_low_box_from_the_coarse_look_is_found_again_closer(fake_models, height, looks):
    fake_models.box = _box(64, 64, 128, height)  # at 384; 40 pixels at 640 is 24 at 384
    read_text(np.zeros((348, 348, 3), np.uint8), TextReadSettings())
    assert len(fake_models.det_shapes) == looks and fake_models.det_shapes[0] == (384, 384, 3)


@pytest.mark.parametrize("value", [-1, 2001, 1.5, True])
def test_coarse_side_is_checked(value):
    with pytest.raises(Exception, match="coarse_side"):
        TextReadSettings(coarse_side=value)


@pytest.mark.parametrize("shape", [(8, 2000), (2000, 8), (9, 400), (100, 5000), (1024, 700)])
def test_a_closer_look_at_any_photo_shape(fake_models, shape):
    fake_models.unboxed = [(0.0, 0.0, 1e4, 1e4)]  # text seen all over: the closer look covers the whole photo
    found = read_text(np.zeros((*shape, 3), np.uint8), TextReadSettings())
    assert len(fake_models.det_shapes) == 2 and all(min(s[:2]) >= 1 for s in fake_models.det_shapes)
    full = detection_size(shape[1], shape[0], TextReadSettings())
    assert fake_models.det_shapes[1][:2] == (full[1], full[0])  # the whole photo, scaled as one look scales it
    for box in found.boxes:
        assert all(np.isfinite(v) for point in box.box for v in point)
