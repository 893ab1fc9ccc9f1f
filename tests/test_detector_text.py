"""The detector with text in photos on (Policy.text.enabled): the photo-text signals, the text tier, the
policy's text section and an index that keeps its reference photos' text."""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from conftest import textured_image, write_csv
from knockoff.catalog.readers import Brand, Catalog, Listing
from knockoff.decide import rule
from knockoff.decide.detector import Detector
from knockoff.decide.policy import Policy, TextSettings
from knockoff.decide.signals import (
    BRAND_IN_PHOTO,
    MISSPELLED_BRAND_IN_PHOTO,
    REPLICA_TERMS,
    TEXT_RISK_CODES,
    TEXT_TIER,
    UNAUTHORIZED_SELLER,
    Signal,
)
from knockoff.errors import IndexCorruptError, PolicyError
from knockoff.evaluate.edits import load_font
from knockoff.match.index import ReferenceIndex, build_index
from knockoff.match.text import TextReadSettings

HAVE_RAPIDOCR = importlib.util.find_spec("rapidocr") is not None
needs_ocr = pytest.mark.skipif(not HAVE_RAPIDOCR, reason="rapidocr is not installed")
# the text's evidence alone: the packaging match (on by default) would also see the printed posters' letters
TEXT_ON = Policy(text=TextSettings(enabled=True), packaging_match=False)
TEXT_OFF = Policy(text=TextSettings(enabled=False), packaging_match=False)
OVERLAP = Policy(text=TextSettings(enabled=True, read=TextReadSettings(overlap=True)),  # reads during the match
                 packaging_match=False)


def poster(lines: tuple[str, ...], size: tuple[int, int] = (480, 360), background=(250, 248, 240)) -> Image.Image:
    """A plain photo with each line printed large."""
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((36, 60 + 110 * number), line, font=load_font(72), fill=(20, 20, 30))
    return image


@pytest.fixture(scope="module")
def text_catalog(tmp_path_factory) -> Path:
    """Acme (sold by acme-store) with a printed pack and a pattern photo; Norda with a printed pack."""
    root = tmp_path_factory.mktemp("text-catalog")
    poster(("ACME", "SOMMARFIL")).save(root / "acme-pack.png")
    textured_image(7, (320, 320)).save(root / "acme-pattern.png")
    poster(("NORDA", "LAKTOSFRI"), background=(230, 240, 250)).save(root / "norda-pack.png")
    write_csv(root / "brands.csv", ["brand", "aliases", "authorized_sellers"],
              [["Acme", "", "acme-store"], ["Norda", "", "norda-store"]])
    write_csv(root / "references.csv", ["brand", "product_id", "product_name", "image", "price", "currency"],
              [["Acme", "pack", "Acme pack", "acme-pack.png", 20, "USD"],
               ["Acme", "pattern", "Acme scarf", "acme-pattern.png", 30, "USD"],
               ["Norda", "pack", "Norda pack", "norda-pack.png", 25, "USD"]])
    return root


@pytest.fixture(scope="module")
def text_index(text_catalog):
    return build_index(Catalog.from_dir(text_catalog), "perceptual", read_text=HAVE_RAPIDOCR)


@pytest.fixture(scope="module")
def listing_photos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("text-listings")
    photos = {
        # new photos (no official photo reused): the brand printed with other words, on another layout
        "genuine": poster(("Acme", "SALE"), (520, 400), (240, 250, 235)),
        "misspelled": poster(("ACNE", "NEW"), (520, 400), (240, 250, 235)),
        "product": poster(("SOMMARFIL", "ACME"), (560, 400), (255, 240, 230)),
        "copy": textured_image(7, (320, 320)),  # a copy of Acme's pattern photo, which shows no text
    }
    paths = {}
    for name, image in photos.items():
        paths[name] = root / f"{name}.png"
        image.save(paths[name])
    return paths


def _check(index, photo: Path, policy: Policy = TEXT_ON, **fields):
    values = {"title": "", "price": None, "currency": None, "seller": None, **fields}
    return Detector(index, policy).check(Listing(images=(str(photo),), listing_id=photo.stem, **values))


@needs_ocr
def test_brand_in_photo_with_an_unauthorized_seller_is_a_suspect(text_index, listing_photos):
    verdict = _check(text_index, listing_photos["genuine"], seller="shop9", title="nice bag", price=19,
                     currency="USD")
    assert verdict.verdict == "suspect", verdict.reasons
    assert verdict.match is not None and verdict.match.tier == TEXT_TIER and verdict.match.brand == "Acme"
    named = verdict.signal(BRAND_IN_PHOTO)
    assert named is not None and named.state == "hit" and "'Acme'" in named.message
    assert verdict.signal(MISSPELLED_BRAND_IN_PHOTO).state == "clear"
    mention = named.details["mentions"][0]
    boxes = named.details["photo_text"][mention["photo"]]["boxes"]
    assert [boxes[b]["text"] for b in mention["boxes"]] == ["Acme"]
    assert len(boxes[mention["boxes"][0]]["box"]) == 4
    assert json.loads(json.dumps(verdict.to_dict()))["signals"][2]["code"] == "PRICE_IMPLAUSIBLE"


@needs_ocr
def test_brand_in_photo_with_an_authorized_seller_and_every_check_clear_is_authorized(text_index, listing_photos):
    verdict = _check(text_index, listing_photos["genuine"], seller="acme-store", title="Acme summer pack",
                     price=21, currency="USD")
    assert verdict.verdict == "authorized", verdict.reasons
    assert verdict.signal(BRAND_IN_PHOTO).state == "clear"
    assert any(r.code == BRAND_IN_PHOTO for r in verdict.reasons)  # says why the listing counts as Acme's
    unchecked = _check(text_index, listing_photos["genuine"], seller="acme-store", title="Acme summer pack")
    assert unchecked.verdict == "review"  # no price: not every signal could be checked


@needs_ocr
def test_a_misspelled_brand_in_the_photo_is_a_suspect_whatever_the_seller(text_index, listing_photos):
    verdict = _check(text_index, listing_photos["misspelled"], seller="acme-store", title="Acme pack", price=20,
                     currency="USD")
    assert verdict.verdict == "suspect", verdict.reasons
    wrong = verdict.signal(MISSPELLED_BRAND_IN_PHOTO)
    assert wrong.state == "hit" and "'ACNE'" in wrong.message
    assert wrong.details["mentions"][0]["spelling"] == "Acme"
    assert verdict.signal(BRAND_IN_PHOTO).state == "clear"


@needs_ocr
def test_product_words_read_in_the_photo_name_the_product(text_index, listing_photos):
    assert text_index.reads_text
    verdict = _check(text_index, listing_photos["product"], seller="shop9", title="pack", price=20, currency="USD")
    assert verdict.match.product_id == "pack" and verdict.match.brand == "Acme"
    assert verdict.match.reference_image.endswith("acme-pack.png")
    message = verdict.signal(BRAND_IN_PHOTO).message
    assert "'ACME'" in message and "'SOMMARFIL'" in message


@needs_ocr
def test_a_match_whose_photo_shows_no_text_has_clear_text_signals(text_index, listing_photos):
    verdict = _check(text_index, listing_photos["copy"], seller="acme-store", title="Acme scarf", price=30,
                     currency="USD")
    assert verdict.match is not None and verdict.match.tier == "near-copy"
    states = {code: verdict.signal(code).state for code in TEXT_RISK_CODES}
    assert states == {BRAND_IN_PHOTO: "clear", MISSPELLED_BRAND_IN_PHOTO: "clear"}
    assert verdict.signal(REPLICA_TERMS).state == "clear"
    assert verdict.verdict == "authorized"


@needs_ocr
def test_a_copy_sold_by_another_seller_is_a_suspect_without_reading_its_text(text_index, listing_photos,
                                                                             monkeypatch):
    from knockoff.decide.text_evidence import TextMatcher

    def no_reading(*args, **kwargs):
        raise AssertionError("the text was read although it could not change the verdict")

    monkeypatch.setattr(TextMatcher, "read", no_reading)
    verdict = _check(text_index, listing_photos["copy"], seller="shop9", title="scarf", price=30, currency="USD")
    assert verdict.verdict == "suspect" and verdict.match.tier == "near-copy"
    for code in TEXT_RISK_CODES:  # said, never a silent clear
        signal = verdict.signal(code)
        assert signal.state == "unknown" and "not read" in signal.message and signal.details["not_read"]
    with pytest.raises(AssertionError, match="could not change"):  # a verdict the text could change reads it
        _check(text_index, listing_photos["copy"], seller="acme-store", title="Acme scarf", price=30, currency="USD")


@pytest.mark.parametrize("tier", ["near-copy", "same-package", "same-product"])
@pytest.mark.parametrize("base", [(UNAUTHORIZED_SELLER,), ("PRICE_IMPLAUSIBLE",), ("BRAND_MISUSE", REPLICA_TERMS),
                                  (UNAUTHORIZED_SELLER, "PRICE_IMPLAUSIBLE")])
@pytest.mark.parametrize("text_states", [("clear", "clear"), ("hit", "clear"), ("clear", "hit"), ("hit", "hit")])
def test_photo_text_can_never_lower_a_suspect(tier, base, text_states):
    """Why the detector may skip reading a suspect's text: with a visual tier, whatever the text signals say,
    a suspect stays a suspect and its risk does not fall."""
    codes = (UNAUTHORIZED_SELLER, "PRICE_IMPLAUSIBLE", "BRAND_MISUSE", REPLICA_TERMS)
    signals = tuple(Signal(c, "hit" if c in base else "clear", c) for c in codes)
    without = rule.decide(tier, signals, TEXT_ON)
    read = tuple(Signal(c, state, c) for c, state in zip((BRAND_IN_PHOTO, MISSPELLED_BRAND_IN_PHOTO), text_states))
    with_text = rule.decide(tier, (*signals, *read), TEXT_ON)
    assert with_text[1] >= without[1] and (without[0] != "suspect" or with_text[0] == "suspect")


def test_with_text_off_there_are_no_text_signals(text_catalog, listing_photos):
    index = build_index(Catalog.from_dir(text_catalog), "perceptual")
    assert not index.reads_text and index.reference_texts is None
    verdict = _check(index, listing_photos["copy"], policy=TEXT_OFF, seller="acme-store", title="Acme scarf",
                     price=30, currency="USD")
    assert verdict.verdict == "authorized"
    assert not {s.code for s in verdict.signals} & set(TEXT_RISK_CODES)
    for photo in ("genuine", "misspelled"):  # the printed name alone is not a match
        assert _check(index, listing_photos[photo], policy=TEXT_OFF, seller="shop9").verdict == "no_match"


@needs_ocr
def test_an_index_built_with_text_loads_its_texts_elsewhere(text_index, tmp_path):
    text_index.save(tmp_path / "built")
    shutil.copytree(tmp_path / "built", tmp_path / "moved")
    shutil.rmtree(tmp_path / "built")
    loaded = ReferenceIndex.load(tmp_path / "moved")
    assert loaded.reads_text
    assert loaded.reference_texts.products.words == text_index.reference_texts.products.words
    read = {ref.product_id + ref.brand: text.texts for ref_id, ref in loaded.references.items()
            for key, text in loaded.reference_texts.photos.items() if key == str(ref_id)}
    assert "SOMMARFIL" in read["packAcme"] and "LAKTOSFRI" in read["packNorda"]
    manifest = json.loads((tmp_path / "moved" / "manifest.json").read_text())
    assert manifest["texts"]["count"] == 3 and "texts.json" in manifest["checksums"]
    (tmp_path / "moved" / "texts.json").write_text("{}")
    with pytest.raises(IndexCorruptError, match="texts.json"):
        ReferenceIndex.load(tmp_path / "moved")


@needs_ocr
def test_removing_a_product_drops_its_texts(text_catalog):
    index = build_index(Catalog.from_dir(text_catalog), "perceptual", read_text=True)
    assert index.remove_product("Norda", "pack") == 1
    words = index.reference_texts.products.words
    assert not any("laktosfrl" in w for w in words.values())  # "i" is compared as "l" (OCR confusions)


# -- the policy and the rule ----------------------------------------------------------------------------------


def test_policy_json_round_trip_with_text():
    policy = Policy(text=TextSettings(enabled=True, read=replace(TextSettings().read, det_side=800, max_boxes=4,
                                                                coarse_side=0),
                                      match=replace(TextSettings().match, min_misspelling_score=0.9)))
    again = Policy.from_json(policy.to_json())
    assert again == policy and again.text.read.det_side == 800 and again.text.match.min_misspelling_score == 0.9
    assert again.text.read.coarse_side == 0 and TextSettings().read.coarse_side == 384
    assert Policy.from_dict({"text": {"enabled": True}}).text.read == TextSettings().read
    assert Policy().text.enabled and replace(Policy(), packaging_match=False) == TEXT_ON  # on by default
    assert not Policy.from_dict({"text": {"enabled": False}}).text.enabled


@pytest.mark.parametrize(("data", "message"), [
    ({"text": {"enabeld": True}}, "unknown key 'text.enabeld'; did you mean 'enabled'"),
    ({"text": {"read": {"det_sid": 640}}}, "unknown key 'text.read.det_sid'"),
    ({"text": {"read": {"det_side": 10}}}, "text.read: det_side must be an integer"),
    ({"text": {"read": {"coarse_side": -3}}}, "text.read: coarse_side must be an integer"),
    ({"text": {"match": {"max_join": 9}}}, "text.match: max_join must be"),
    ({"text": {"enabled": "yes"}}, "text.enabled must be true or false"),
    ({"risk": {"text_confidence": 0}}, "risk.text_confidence must be in"),
    ({"weights": {"BRAND_IN_PHOTO": 2}}, "weight of BRAND_IN_PHOTO"),
])
def test_policy_text_section_is_validated(data, message):
    with pytest.raises(PolicyError, match=message):
        Policy.from_dict(data)


def _signals(**states: str) -> tuple[Signal, ...]:
    codes = (UNAUTHORIZED_SELLER, "PRICE_IMPLAUSIBLE", "BRAND_MISUSE", REPLICA_TERMS, *TEXT_RISK_CODES)
    return tuple(Signal(code, states.get(code, "clear"), code) for code in codes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("tier", "states", "text_on", "expected"), [
    (TEXT_TIER, {BRAND_IN_PHOTO: "hit", UNAUTHORIZED_SELLER: "hit"}, True, "suspect"),
    (TEXT_TIER, {}, True, "authorized"),
    (TEXT_TIER, {MISSPELLED_BRAND_IN_PHOTO: "hit"}, True, "suspect"),
    (TEXT_TIER, {BRAND_IN_PHOTO: "unknown"}, True, "review"),
    ("near-copy", {BRAND_IN_PHOTO: "unknown"}, True, "review"),
    ("near-copy", {BRAND_IN_PHOTO: "unknown"}, False, "authorized"),  # text off: those codes are not counted
    ("near-copy", {MISSPELLED_BRAND_IN_PHOTO: "hit"}, False, "authorized"),
])
def test_the_rule_with_text_signals(tier, states, text_on, expected):
    policy = TEXT_ON if text_on else TEXT_OFF
    assert rule.decide(tier, _signals(**states), policy)[0] == expected


def test_without_text_the_text_signals_are_not_expected():
    signals = tuple(s for s in _signals() if s.code not in TEXT_RISK_CODES)
    assert rule.decide("near-copy", signals, TEXT_OFF)[0] == "authorized"
    assert rule.decide("near-copy", signals, TEXT_ON)[0] == "review"  # expected, absent: not checked
    assert rule.review_band(TEXT_OFF) == rule.review_band(TEXT_ON)


def test_brand_names_in_the_index_do_not_need_text_at_build(text_catalog):
    index = build_index(Catalog.from_dir(text_catalog), "perceptual")
    assert {b.name for b in index.brands.values()} == {"Acme", "Norda"}
    assert index.brand("acme") == Brand("Acme", (), ("acme-store",))


# -- the command line and the demo ---------------------------------------------------------------------------


@needs_ocr
def test_cli_printed_set_index_with_text_and_a_text_policy(tmp_path, capsys):
    from knockoff.cli.app import main

    set_dir = tmp_path / "printed"
    assert main(["make-set", str(set_dir), "--kind", "printed", "--size", "6", "--seed", "3"]) == 0
    rows = (set_dir / "listings.csv").read_text().splitlines()
    assert len(rows) == 7 and rows[0].endswith(",kind,x_printed")
    assert main(["index", "build", str(set_dir), "--out", str(tmp_path / "index"), "--engine", "perceptual",
                 "--text"]) == 0
    assert "text read from" in capsys.readouterr().out
    assert ReferenceIndex.load(tmp_path / "index").reads_text
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"text": {"enabled": True}}))
    first = set_dir / "listings" / "P00000.png"  # Acme printed right, sold by the official store
    code = main(["check", str(first), "--index", str(tmp_path / "index"), "--policy", str(policy), "--json",
                 "--seller", "shop1"])
    verdict = json.loads(capsys.readouterr().out)
    assert code == 1 and verdict["verdict"] == "suspect"
    assert {s["code"]: s["state"] for s in verdict["signals"]}[BRAND_IN_PHOTO] == "hit"


@pytest.mark.slow
@needs_ocr
def test_demo_with_text_shows_the_text_signals(tmp_path):
    from knockoff.evaluate.demo import run_demo

    result = run_demo(tmp_path, engine="perceptual", text=True, policy=TEXT_OFF)  # --text beats a text-off policy
    assert result.correct == len(result.rows)
    text_rows = [v for _, kind, v in result.rows if kind.startswith("text-")]
    assert len(text_rows) == 6
    hits = {s.code for v in text_rows for s in v.signals if s.hit}
    assert {BRAND_IN_PHOTO, MISSPELLED_BRAND_IN_PHOTO} <= hits
    plain = [v for _, kind, v in result.rows if not kind.startswith("text-")]
    assert len(plain) == 46 and not any(v.signal(BRAND_IN_PHOTO) for v in plain)


@pytest.mark.slow
@needs_ocr
def test_demo_under_a_policy_that_reads_text_shows_the_text_signals(tmp_path):
    """Once text reading is on by default (or in the policy given), the plain demo shows the text signals too."""
    from knockoff.evaluate.demo import run_demo

    result = run_demo(tmp_path, engine="perceptual", policy=TEXT_ON)
    text_rows = [v for _, kind, v in result.rows if kind.startswith("text-")]
    assert len(text_rows) == 6 and len(result.rows) == 52
    assert {BRAND_IN_PHOTO, MISSPELLED_BRAND_IN_PHOTO} <= {s.code for v in text_rows for s in v.signals if s.hit}


@needs_ocr
def test_another_brand_named_in_a_matched_photo_is_reported(text_index, tmp_path):
    photo = textured_image(7, (320, 320))  # Acme's pattern photo, with Norda's name printed on it
    ImageDraw.Draw(photo).text((20, 120), "NORDA", font=load_font(64), fill=(255, 255, 255))
    photo.save(tmp_path / "mixed.png")
    verdict = _check(text_index, tmp_path / "mixed.png", seller="acme-store", title="Acme scarf", price=30,
                     currency="USD")
    if verdict.match is None or verdict.match.brand != "Acme":
        pytest.skip("the printed name hid the copy from the visual match")
    named = verdict.signal(BRAND_IN_PHOTO)
    assert named.details["other_brands"] == ["Norda"] and "also names Norda" in named.message
    assert any(m["brand"] == "Norda" for m in named.details["mentions"]) and "photo_text" in named.details


@needs_ocr
@pytest.mark.parametrize(("photo", "seller"), [("genuine", "shop9"), ("misspelled", "acme-store"),
                                               ("product", "shop9"), ("copy", "shop9"), ("copy", "acme-store")])
def test_reading_during_the_photo_match_gives_the_verdict_of_reading_after_it(text_index, listing_photos, photo,
                                                                            seller):
    fields = {"seller": seller, "title": "Acme scarf", "price": 30, "currency": "USD"}
    during = _check(text_index, listing_photos[photo], OVERLAP, **fields)
    assert during.to_dict() == _check(text_index, listing_photos[photo], **fields).to_dict()  # overlap off


@needs_ocr
def test_a_reading_started_during_the_match_is_stopped_when_the_match_settles_the_verdict(text_index, listing_photos,
                                                                                        monkeypatch):
    started = []
    real_start = Detector._start_reading

    def spy(self, *args):
        started.append(real_start(self, *args))
        return started[-1]

    monkeypatch.setattr(Detector, "_start_reading", spy)
    # a copy sold by no named seller at a fifth of the price: begun during the match, stopped when it settles
    verdict = _check(text_index, listing_photos["copy"], OVERLAP, title="scarf", price=6, currency="USD")
    assert verdict.verdict == "suspect" and verdict.signal(BRAND_IN_PHOTO).details["not_read"]
    assert len(started) == 1 and started[0].cancelled
    # a likely copy sold by a seller the brand does not authorize: not begun (the match alone likely settles it)
    verdict = _check(text_index, listing_photos["copy"], OVERLAP, seller="shop9", title="scarf", price=30,
                     currency="USD")
    assert verdict.verdict == "suspect" and verdict.signal(BRAND_IN_PHOTO).details["not_read"]
    assert len(started) == 2 and started[1] is None
    # the same copy sold by the brand's own seller needs its text: read during the match
    verdict = _check(text_index, listing_photos["copy"], OVERLAP, seller="acme-store", title="Acme scarf", price=30,
                     currency="USD")
    assert verdict.signal(BRAND_IN_PHOTO).state == "clear" and len(started) == 3 and started[2] is not None
    _check(text_index, listing_photos["genuine"], seller="shop9")
    assert len(started) == 4 and started[3] is None  # overlap off (the default): the text is read after the match


def test_a_detector_that_cannot_read_text_says_how_to_check_without_it(text_catalog, monkeypatch):
    """Text reading is on by default: when no reader can be loaded, the error names the setting that turns it off."""
    from knockoff.decide import detector as detector_module
    from knockoff.errors import ConfigError

    index = build_index(Catalog.from_dir(text_catalog), "perceptual")
    monkeypatch.setattr(detector_module, "reader_status", lambda settings=None: "rapidocr is not installed")
    with pytest.raises(ConfigError, match=r'rapidocr is not installed; .*"enabled": false'):
        Detector(index)
    assert Detector(index, TEXT_OFF).policy.text.enabled is False  # no reader needed with it off
