"""Reading text from photos (knockoff.match.text) and the printed-brand set generator."""

from __future__ import annotations

import builtins
import os
import threading
import hashlib
import importlib.util

import numpy as np
import pytest
from PIL import Image, ImageDraw

from knockoff.evaluate.edits import load_font
from knockoff.evaluate.printed import PRINTED_KINDS, make_printed_set, misspell, printed_cases
from knockoff.match import text as text_module
from knockoff.errors import ResultError
from knockoff.match.text import PhotoText, TextBox, TextReadSettings, read_text, read_texts, start_reading

HAVE_RAPIDOCR = importlib.util.find_spec("rapidocr") is not None


def _poster(word: str, size: tuple[int, int] = (480, 320)) -> Image.Image:
    image = Image.new("RGB", size, (250, 248, 240))
    draw = ImageDraw.Draw(image)
    draw.text((40, 120), word, font=load_font(64), fill=(20, 20, 30))
    return image


@pytest.fixture
def fresh_engines(monkeypatch):
    monkeypatch.setattr(text_module, "_engines", {})
    monkeypatch.setattr(text_module, "_failures", {})


@pytest.mark.skipif(not HAVE_RAPIDOCR, reason="rapidocr is not installed")
@pytest.mark.parametrize("size", [(480, 320), (1600, 1067)])
def test_read_text_reads_large_printed_text(size):
    image = _poster("KNOCKOFF", (480, 320)).resize(size, Image.Resampling.BICUBIC)
    found = read_text(image)
    assert found.available and found.engine.startswith("rapidocr")
    assert any("KNOCKOFF" in b.text.upper() for b in found.boxes), found.texts
    box = next(b for b in found.boxes if "KNOCKOFF" in b.text.upper())
    xs, ys = [p[0] for p in box.box], [p[1] for p in box.box]
    scale = size[0] / 480  # boxes are in the original photo's pixels, whatever size text was detected at
    assert 20 * scale < min(xs) < 80 * scale and 100 * scale < min(ys) < 140 * scale and max(xs) < size[0]


@pytest.mark.skipif(not HAVE_RAPIDOCR, reason="rapidocr is not installed")
def test_reread_box_reads_the_same_line_from_three_views():
    from knockoff.decide.photo_text import read_brand_mentions
    from knockoff.catalog.readers import Brand

    image = _poster("ACNE")
    text = read_text(image)
    box = next(b for b in text.boxes if "ACNE" in b.text.upper())
    again = text_module.reread_box(image, box)
    assert len(again) == 3 and all("ACNE" in r.upper() for r in again), again
    found = read_brand_mentions([image], [text], [Brand("Acme"), Brand("Puma")])
    assert [(m.brand, m.how) for m in found] == [("Acme", "misspelled")]  # printed so, read so three times


class _CountedLooks:
    """Wraps the loaded models, counting the detector's looks (the coarse one and any closer one)."""

    def __init__(self, engine):
        self.engine, self.shapes = engine, []

    def detect_checked(self, image, options=None):
        self.shapes.append(image.shape[:2])
        return self.engine.detect_checked(image, options)

    def detect(self, image, options=None):
        self.shapes.append(image.shape[:2])
        return self.engine.detect(image, options)

    def recognise(self, crops, options=None):
        return self.engine.recognise(crops, options)


def _poster_with_small_print(size: tuple[int, int] = (320, 320)) -> Image.Image:
    image = Image.new("RGB", size, (250, 248, 240))
    draw = ImageDraw.Draw(image)
    draw.text((30, 60), "NORDA", font=load_font(56), fill=(20, 20, 30))
    draw.text((30, 250), "MADE IN SWEDEN 500 ML", font=load_font(11), fill=(20, 20, 30))
    return image


@pytest.mark.skipif(not HAVE_RAPIDOCR, reason="rapidocr is not installed")
@pytest.mark.parametrize(("small_print", "looks"), [(False, 1), (True, 2)])
def test_the_closer_look_is_taken_where_the_coarse_one_saw_small_print(monkeypatch, small_print, looks):
    settings = TextReadSettings()
    engine, _ = text_module._engine(settings)
    counted = _CountedLooks(engine)
    monkeypatch.setitem(text_module._engines, text_module.engine_key(settings), counted)
    image = _poster_with_small_print() if small_print else _poster("NORDA", (320, 320))
    found = read_text(image, settings)
    assert counted.shapes[0] == (384, 384) and len(counted.shapes) == looks
    once = read_text(image, TextReadSettings(coarse_side=0))  # one look at det_side, as before coarse looks
    assert any("NORDA" in t.upper() for t in found.texts), found.texts
    assert [t.upper() for t in found.texts] == [t.upper() for t in once.texts]
    if small_print:
        assert max(counted.shapes[1]) < 640 and any("SWEDEN" in t.upper() for t in found.texts), found.texts


def test_reread_box_without_a_reader_reads_nothing(monkeypatch, fresh_engines):
    monkeypatch.setattr(text_module, "_engine", lambda settings: (None, "no reader"))
    box = text_module.TextBox("ACNE", 0.9, ((0, 0), (10, 0), (10, 5), (0, 5)))
    assert text_module.reread_box(_poster("ACNE"), box) == ()


@pytest.mark.skipif(not HAVE_RAPIDOCR, reason="rapidocr is not installed")
def test_read_text_on_a_blank_photo_reads_nothing():
    assert read_text(np.full((200, 300, 3), 255, np.uint8)) == PhotoText((), read_text(_poster("A")).engine)


def test_missing_engine_makes_text_unavailable_not_clear(monkeypatch, fresh_engines):
    real_import = builtins.__import__

    def no_rapidocr(name, *args, **kwargs):
        if name == "rapidocr" or name.startswith("rapidocr."):
            raise ImportError("No module named 'rapidocr'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rapidocr)
    found = read_text(_poster("ACME"))
    assert not found.available and found.boxes == ()
    assert "rapidocr" in found.unavailable
    assert text_module.reader_status() == found.unavailable


@pytest.mark.parametrize("kwargs", [{"det_side": 10}, {"max_upscale": 0.5}, {"min_height": -1},
                                    {"min_score": 1.0}, {"threads": -2}, {"overlap": "yes"}, {"overlap": 1}])
def test_read_settings_are_validated(kwargs):
    with pytest.raises(ValueError):
        TextReadSettings(**kwargs)


def test_text_box_and_photo_text_round_trip():
    box = TextBox("Arla", 0.97, ((1, 2), (3, 2), (3, 4), (1, 4)))
    photo = PhotoText((box,), "e")
    assert PhotoText.from_dict(photo.to_dict()) == photo
    with pytest.raises(ValueError):
        TextBox("x", 1.5, box.box)
    with pytest.raises(ValueError):
        PhotoText((box,), "e", unavailable="no engine")


def _digest(image: Image.Image) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()


def test_printed_cases_are_deterministic_and_cover_every_kind():
    first = list(printed_cases(9, seed=3, image_size=160))
    again = list(printed_cases(9, seed=3, image_size=160))
    other = list(printed_cases(9, seed=4, image_size=160))
    assert [_digest(c.image) for c in first] == [_digest(c.image) for c in again]
    assert [_digest(c.image) for c in first] != [_digest(c.image) for c in other]
    assert {c.kind for c in first} == set(PRINTED_KINDS)
    for case in first:
        assert (case.printed == "") == (case.kind == "printed-unrelated")
        if case.kind == "printed-genuine":
            assert case.printed.casefold() == case.brand.casefold()
        if case.kind == "printed-misspelled":
            assert case.printed.casefold() != case.brand.casefold()


@pytest.mark.parametrize("brand", ["Acme", "Velora", "Dravenport"])
def test_misspell_is_close_but_never_the_name(brand):
    rng = np.random.default_rng(0)
    for _ in range(200):
        wrong = misspell(brand, rng)
        assert wrong.casefold() != brand.casefold()
        assert abs(len(wrong) - len(brand)) <= 1 and len(wrong) >= 4


def test_make_printed_set_writes_a_labeled_set(tmp_path):
    info = make_printed_set(tmp_path / "set", n_listings=12, seed=1, image_size=128, brands=("Acme", "Norda"))
    again = make_printed_set(tmp_path / "again", n_listings=12, seed=1, image_size=128, brands=("Acme", "Norda"))
    assert info.kind_counts == {k: 4 for k in PRINTED_KINDS}
    assert set(info.label_counts) == {"genuine", "counterfeit", "unrelated"}
    for name in ("brands.csv", "references.csv", "listings.csv", "listings/P00005.png"):
        assert (tmp_path / "set" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    with pytest.raises(FileExistsError):
        make_printed_set(tmp_path / "set", n_listings=3)
    assert again.n_listings == 12


class _BlockingEngine:
    """A text engine whose detection runs until its run options are terminated (as onnxruntime's do), or fails
    at once with ``fail``."""

    def __init__(self, fail: Exception | None = None):
        self.pid = os.getpid()
        self.fail = fail
        self.entered = threading.Event()
        self.options: list[object] = []

    def run_options(self):
        options = type("Options", (), {"terminate": False})()
        self.options.append(options)
        return options

    def detect(self, image, options=None):
        self.entered.set()
        if self.fail is not None:
            raise self.fail
        for _ in range(500):
            if options is not None and options.terminate:
                raise RuntimeError("Exiting due to terminate flag being set to true")
            threading.Event().wait(0.01)
        raise AssertionError("the detection was never terminated")

    def detect_checked(self, image, options=None):
        return self.detect(image, options), None

    def recognise(self, crops, options=None):
        return [("X", 1.0) for _ in crops]


def test_a_cancelled_reading_terminates_the_run_in_progress_and_has_no_result(monkeypatch, fresh_engines):
    engine = _BlockingEngine()
    monkeypatch.setitem(text_module._engines, text_module.engine_key(TextReadSettings()), engine)
    reading = start_reading([_poster("ACME"), _poster("NORDA")])
    assert engine.entered.wait(5)
    reading.cancel()
    with pytest.raises(ResultError, match="cancelled"):
        reading.result()
    assert reading.cancelled and engine.options[0].terminate
    reading.cancel()  # again: nothing


def test_a_reading_that_fails_on_its_own_raises_its_error(monkeypatch, fresh_engines):
    monkeypatch.setitem(text_module._engines, text_module.engine_key(TextReadSettings()),
                        _BlockingEngine(fail=ValueError("bad tensor")))
    reading = start_reading([_poster("ACME")])
    with pytest.raises(ValueError, match="bad tensor"):
        reading.result()
    assert not reading.cancelled


def test_a_reading_without_an_engine_says_why_per_photo(monkeypatch, fresh_engines):
    monkeypatch.setitem(text_module._failures, text_module.engine_key(TextReadSettings()), "no engine here")
    texts = start_reading([_poster("A"), _poster("B")]).result()
    assert [t.unavailable for t in texts] == ["no engine here"] * 2


@pytest.mark.skipif(not HAVE_RAPIDOCR, reason="rapidocr is not installed")
def test_a_background_reading_reads_what_read_texts_reads_and_survives_a_cancel():
    photos = [_poster("KNOCKOFF"), np.full((200, 300, 3), 255, np.uint8), _poster("ACME", (960, 640))]
    stopped = start_reading([_poster("NORDA", (1600, 1067))] * 3)
    stopped.cancel()  # terminates the onnxruntime run in progress; the engine is fine afterwards
    with pytest.raises(ResultError):
        stopped.result()
    assert start_reading(photos).result() == read_texts(photos)
