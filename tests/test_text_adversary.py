"""Text in photos against hostile or odd input: brand names in other alphabets, one- and two-letter names, names
with no letter at all, photos too small to read, an OCR engine that fails on one photo. Each must end as a
visible signal (``unknown`` with the photo and the reason), never a silent clear, a false brand or a dead scan."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PIL import Image

from conftest import textured_image, write_csv
from knockoff.catalog.readers import Brand, Catalog, Listing
from knockoff.decide import photo_text, text_evidence
from knockoff.decide.detector import Detector
from knockoff.decide.photo_text import brand_in_photo, find_brand_mentions, misspelled_brand_in_photo
from knockoff.decide.policy import Policy, TextSettings
from knockoff.decide.signals import BRAND_IN_PHOTO, MISSPELLED_BRAND_IN_PHOTO
from knockoff.match.index import build_index
from knockoff.match.text import PhotoText, TextBox, TextReadSettings, read_text
from knockoff.match.text_index import match_key

needs_ocr = pytest.mark.skipif(importlib.util.find_spec("rapidocr") is None, reason="rapidocr is not installed")
BOX = ((0.0, 0.0), (10.0, 0.0), (10.0, 5.0), (0.0, 5.0))
BRANDS = (Brand("Ærø"), Brand("耐克", aliases=("Nike",)), Brand("X"), Brand("LG"), Brand("Łowicz"), Brand("Arla"))


def photo(*lines: str) -> PhotoText:
    return PhotoText(tuple(TextBox(line, 0.99, BOX) for line in lines), "test")


@pytest.mark.parametrize(("text", "key"), [
    ("Ærø", "aero"), ("ÆRØ", "aero"), ("Łowicz", "lowlcz"), ("Œuvre", "oeuvre"), ("Straße", "strasse"),
    ("耐克", "耐克"), ("Arla", "arla"), ("--", ""), ("★★★", ""),
])
def test_match_key_spells_out_letters_and_keeps_other_scripts(text, key):
    # before: every letter outside a-z was dropped ("Ærø" -> "r", "耐克" -> "")
    assert match_key(text) == key


@pytest.mark.parametrize(("lines", "expected"), [
    (("SIZE R",), set()),  # the key of "Ærø" was "r": any R read named the brand
    (("AERO",), {("Ærø", "exact")}),  # how the OCR reads "ÆRØ"
    (("ÆRØ",), {("Ærø", "exact")}),
    (("2 x 500 ml",), set()),  # a one-letter name inside a line is a unit, a size, a sign
    (("X",), {("X", "exact")}),  # ... but a logo standing alone is the name
    (("LG OLED evo",), set()),
    (("LG",), {("LG", "exact")}),
    (("耐克运动鞋",), {("耐克", "exact")}),  # Chinese puts no spaces between words
    (("NIKE AIR",), {("耐克", "alias")}),
    (("ŁOWICZ",), {("Łowicz", "exact")}),
    (("LOWICZ",), {("Łowicz", "exact")}),
])
def test_brand_names_of_any_alphabet_and_length(lines, expected):
    found = {(m.brand, m.how) for m in find_brand_mentions([photo(*lines)], BRANDS)}
    assert found == expected


def test_a_brand_whose_name_has_no_letter_is_not_cleared_unsearched():
    stars = Brand("★★★")
    texts = [photo("★★★ PREMIUM")]
    mentions = find_brand_mentions(texts, [stars])
    named = brand_in_photo(texts, mentions, stars, seller_authorized=False)
    wrong = misspelled_brand_in_photo(texts, mentions, stars)
    assert (named.state, wrong.state) == ("unknown", "unknown")
    assert "★★★" in named.message and "no letter or digit" in wrong.message


def test_a_photo_whose_reading_fails_is_unknown_naming_its_file(monkeypatch, tmp_path):
    calls = []

    def flaky(image, settings=None):
        calls.append(image.size)
        if image.size == (50, 40):
            raise RuntimeError("onnxruntime: bad allocation")
        return PhotoText((TextBox("ARLA", 0.99, BOX),), "test")

    monkeypatch.setattr(text_evidence, "read_text", flaky)
    images = [Image.new("RGB", (60, 40)), Image.new("RGB", (50, 40))]
    texts = text_evidence.read_each(images, [tmp_path / "a.jpg", tmp_path / "b.jpg"], TextReadSettings())
    assert len(calls) == 2 and texts[0].texts == ("ARLA",) and texts[0].available
    assert not texts[1].available and str(tmp_path / "b.jpg") in texts[1].unavailable
    assert "RuntimeError" in texts[1].unavailable and "bad allocation" in texts[1].unavailable


def test_a_misspelling_that_cannot_be_read_again_is_unconfirmed(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("engine gone")

    monkeypatch.setattr(photo_text, "reread_box", broken)
    texts = [photo("ARLO")]
    found = photo_text.read_brand_mentions([Image.new("RGB", (40, 20))], texts, [Brand("Arla")])
    assert [(m.brand, m.how) for m in found] == [("Arla", "unconfirmed")]
    assert misspelled_brand_in_photo(texts, found, Brand("Arla")).state == "unknown"


@needs_ocr
@pytest.mark.parametrize("size", [(400, 4), (3, 300)])
def test_a_photo_too_small_to_read_is_unavailable_not_empty(size):
    text = read_text(Image.new("RGB", size, "white"))
    assert not text.available and f"{size[0]}x{size[1]} pixels" in text.unavailable


@pytest.fixture(scope="module")
def small_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("adversary-catalog")
    textured_image(3, (320, 320)).save(root / "acme.png")
    write_csv(root / "brands.csv", ["brand", "aliases", "authorized_sellers"], [["Acme", "", "acme-store"]])
    write_csv(root / "references.csv", ["brand", "product_id", "product_name", "image", "price", "currency"],
              [["Acme", "pack", "Acme pack", "acme.png", 20, "USD"]])
    return build_index(Catalog.from_dir(root), "perceptual")


@needs_ocr
def test_an_unmatched_listing_whose_photo_text_is_unreadable_says_so(small_index, tmp_path):
    strip = tmp_path / "strip.png"
    Image.new("RGB", (900, 5), (200, 200, 200)).save(strip)
    detector = Detector(small_index, Policy(text=TextSettings(enabled=True)))
    verdict = detector.check(Listing(images=[strip], title="a thing", seller="shop-x", listing_id="L1"))
    assert verdict.verdict == "no_match"
    signal = verdict.signal(BRAND_IN_PHOTO)
    assert signal is not None and signal.state == "unknown" and str(strip) in signal.message
    assert verdict.signal(MISSPELLED_BRAND_IN_PHOTO).state == "unknown"
    assert any(r.code == BRAND_IN_PHOTO and "too small" in r.message for r in verdict.reasons)


@needs_ocr
def test_an_unmatched_listing_whose_photos_were_read_has_no_text_signal(small_index, tmp_path):
    plain = tmp_path / "plain.png"
    textured_image(11, (300, 300)).save(plain)
    detector = Detector(small_index, Policy(text=TextSettings(enabled=True)))
    verdict = detector.check(Listing(images=[plain], title="a thing", seller="shop-x", listing_id="L2"))
    assert verdict.verdict == "no_match" and verdict.signal(BRAND_IN_PHOTO) is None


def test_report_reads_the_size_of_a_photo_over_pillows_warning_limit(tmp_path):
    from knockoff.report.thumbs import full_size

    big = tmp_path / "big.png"
    Image.new("1", (10_000, 9_500)).save(big)  # 95 M pixels: Pillow warns above 89 M (an error under pytest)
    assert full_size(Path(big)) == (10_000, 9_500)


@pytest.mark.slow
def test_report_says_a_text_only_brand_has_no_official_photo(tmp_path):
    """A listing that only its photo's text ties to a brand (tier text, no product): the page said "no photo",
    "official:" and "official photo: · ·" where the official photo would be; it says why there is none."""
    import json

    from test_report import Page, open_chromium, wait_for

    from knockoff.decide.signals import Signal
    from knockoff.decide.verdict import Match, Reason, Verdict
    from knockoff.report import write_reports

    photo_path = tmp_path / "l1.png"
    Image.new("RGB", (200, 120), "white").save(photo_path)
    match = Match("Arla", "", "", "", "", 0.0, "text", str(photo_path))
    shows = Signal(BRAND_IN_PHOTO, "hit", "the photo shows 'ARLA', but the seller is not an authorized Arla seller")
    verdict = Verdict("L1", "suspect", 0.77, match, (Reason(BRAND_IN_PHOTO, shows.message),), (shows,),
                      "perceptual", Listing(images=[photo_path], title="milk", listing_id="L1"))
    out = tmp_path / "scan"
    out.mkdir()
    (out / "results.jsonl").write_text(json.dumps({"schema": 2, **verdict.to_dict()}) + "\n", encoding="utf-8")
    write_reports(out)
    browser = open_chromium(tmp_path / "profile")
    try:
        page = Page(browser, (out / "report.html").as_uri())
        page.load()
        row = page.row("L1")
        text = row.text
        assert "no official photo: only the text read in the listing photo names the brand" in text
        assert "which product: not named" in text and "official: none" in text
        browser.execute_script("document.querySelector('#rows tr.row td .frame').click()")
        viewer = browser.find_element(page.By.ID, "viewer")
        wait_for(viewer.is_displayed)
        assert "official photo: none; Arla is named by the text read in the listing photo" in viewer.text
        assert "· ·" not in viewer.text
    finally:
        browser.quit()


@needs_ocr
def test_a_text_only_match_says_first_that_the_text_names_the_brand(small_index, tmp_path):
    from PIL import ImageDraw

    from knockoff.evaluate.edits import load_font

    printed = tmp_path / "printed.png"
    image = Image.new("RGB", (480, 300), (250, 248, 240))
    ImageDraw.Draw(image).text((40, 100), "ACME", font=load_font(90), fill=(20, 20, 30))
    image.save(printed)
    detector = Detector(small_index, Policy(text=TextSettings(enabled=True)))
    verdict = detector.check(Listing(images=[printed], title="a bag", seller="shop-x", listing_id="L3"))
    assert verdict.verdict == "suspect" and verdict.match.tier == "text"
    first = verdict.reasons[0].message
    assert first.startswith("no reference photo") and first.endswith("the text read in its photo names Acme")


def test_a_line_that_misspells_many_brands_is_read_again_once(monkeypatch):
    """A photo whose one line misspells many catalog brands ("ACNE FUMA ABIBAS ...") read that line again, three
    recognitions each time, once per misspelled brand: a cheap way to make a check slow."""
    calls = []

    def reread(image, box, settings=None):
        calls.append(box.text)
        return (box.text, box.text, box.text)

    monkeypatch.setattr(photo_text, "reread_box", reread)
    brands = [Brand("Acme"), Brand("Puma"), Brand("Adidas"), Brand("Samsung"), Brand("Oatly")]
    texts = [photo("ACNE FUMA ABIBAS SANSUMG OATLU")]
    found = photo_text.read_brand_mentions([Image.new("RGB", (40, 20))], texts, brands)
    assert sorted(m.brand for m in found if m.how == "misspelled") == sorted(b.name for b in brands)
    assert len(calls) == 1


def _mutated(name: str, rng) -> str:
    """``name`` with 0-3 random edits (substitute, insert, delete, swap), in random case."""
    letters = list(name)
    for _ in range(rng.randrange(4)):
        i = rng.randrange(max(1, len(letters)))
        op = rng.randrange(4)
        if op == 0 and letters:
            letters[i] = rng.choice("abcdefghiklmnoprstuy018")
        elif op == 1:
            letters.insert(i, rng.choice("abcdefghiklmnoprstuy"))
        elif op == 2 and len(letters) > 1:
            del letters[i]
        elif op == 3 and i + 1 < len(letters):
            letters[i], letters[i + 1] = letters[i + 1], letters[i]
    word = "".join(letters)
    return word.upper() if rng.random() < 0.5 else word


@pytest.mark.parametrize("seed", range(3))
def test_the_brand_lookup_finds_what_comparing_every_brand_finds(seed):
    """find_brand_mentions looks brands up by key (a photo was compared with every brand: 2 CPU s at 5,000
    brands); it must find exactly what comparing each brand with each word finds."""
    import random

    rng = random.Random(seed)
    syllables = ["ar", "la", "ox", "ta", "mi", "ko", "ne", "su", "pa", "ri", "go", "dor", "ve", "lu"]
    names = {"".join(rng.choice(syllables) for _ in range(rng.randrange(1, 5))).title() for _ in range(120)}
    names |= {"God Morgon", "Acme Goods", "X", "LG", "Ærø", "耐克"}
    brands = [Brand(n, aliases=(f"{n} {rng.choice(syllables)}",) if rng.random() < 0.2 else ()) for n in sorted(names)]
    settings = photo_text.TextMatchSettings()
    kinds = set()
    for _ in range(40):
        lines = [" ".join(_mutated(rng.choice(brands).name, rng) if rng.random() < 0.7 else rng.choice(syllables)
                          for _ in range(rng.randrange(1, 5))) for _ in range(rng.randrange(1, 6))]
        texts = [photo(*lines)]
        spans = photo_text._spans(texts, settings.max_join)
        every = [m for b in brands for m in photo_text._drop_overlaps(photo_text._brand_mentions(spans, b, settings))]
        assert list(find_brand_mentions(texts, brands, settings)) == every, lines
        kinds |= {m.how for m in every}
    assert kinds >= {"exact", "misspelled"}  # the comparison saw both kinds of mention


def test_a_photo_is_compared_with_the_brands_it_may_name_not_with_every_brand(monkeypatch):
    brands = [Brand(f"Brand{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}{chr(97 + i // 676)}") for i in range(2000)]
    brands += [Brand("Arla"), Brand("God Morgon")]
    judged = []
    real = photo_text._brand_mentions
    monkeypatch.setattr(photo_text, "_brand_mentions", lambda spans, brand, settings: judged.append(brand.name)
                        or real(spans, brand, settings))
    found = find_brand_mentions([photo("ARLO MJÖLK 1L", "GOD", "MORGON juice")], brands)
    assert {(m.brand, m.how) for m in found} == {("Arla", "misspelled"), ("God Morgon", "exact")}
    assert len(judged) <= 10, judged[:20]  # was all 2,002


def test_a_review_on_the_title_alone_is_not_shown_as_a_match_of_the_nearest_photos_brand():
    """A listing no photo of which matched, whose title names brand X (a review), carries the nearest reference
    (brand Ærø, tier None) as its ``match``: the page and results.csv showed it as a review *of Ærø*."""
    from knockoff.decide.signals import PRICE_IMPLAUSIBLE, TITLE_NAMES_BRAND, Signal
    from knockoff.decide.verdict import Match, Reason, Verdict
    from knockoff.report.csvfile import csv_row
    from knockoff.report.entry import entry_from_result

    nearest = Match("Ærø", "p0", "Ærø bag", "/refs/r0.png", "refs/r0.png", 0.76, None, "/l/i3.png", 100.0, "EUR")
    named = Signal(TITLE_NAMES_BRAND, "hit", "title names the brand X ('x')", {"brand": "X", "how": "exact"})
    price = Signal(PRICE_IMPLAUSIBLE, "hit", "price 1 EUR is 1% of the cheapest X reference price 100 EUR",
                   {"share": 0.01})
    verdict = Verdict("L1", "review", 0.17, nearest, (Reason(TITLE_NAMES_BRAND, named.message),), (named, price),
                      "perceptual", Listing(images=["/l/i3.png"], title="2 x bag", listing_id="L1"))
    entry = entry_from_result(verdict)
    assert (entry.brand, entry.matched) == ("X", False)
    row = csv_row(entry, ())
    assert (row["brand"], row["product_id"], row["nearest_reference"]) == ("X", None, "/refs/r0.png")


def test_the_pixel_limit_is_the_policys_not_pillows(tmp_path, monkeypatch):
    """Pillow's decompression-bomb warning (above 89 M pixels) was turned into the refusal: a photo above it was
    refused with Pillow's limit in the message even under ``images.max_pixels`` null ("no limit") or higher."""
    from knockoff.catalog.images import load_image
    from knockoff.errors import ImageError

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow warns above 1,000 pixels, refuses above 2,000
    warned, bomb = tmp_path / "warned.png", tmp_path / "bomb.png"
    Image.new("RGB", (40, 40), "white").save(warned)  # 1,600 pixels
    Image.new("RGB", (50, 50), "white").save(bomb)  # 2,500 pixels
    assert load_image(warned, max_pixels=None).size == (40, 40)
    assert load_image(warned, max_pixels=5000).size == (40, 40)
    with pytest.raises(ImageError, match="1,600 pixels, over the limit of 1,500"):
        load_image(warned, max_pixels=1500)
    with pytest.raises(ImageError, match="over 2,000 pixels, the most any image may have"):
        load_image(bomb, max_pixels=None)


def test_why_a_photo_of_the_listing_was_not_checked_is_in_the_result(small_index, tmp_path):
    bad, good = tmp_path / "bad.jpg", tmp_path / "good.png"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    textured_image(11, (300, 300)).save(good)
    detector = Detector(small_index, Policy(text=TextSettings(enabled=False)))
    verdict = detector.check(Listing(images=[good, bad], title="a thing", seller="shop-x", listing_id="L4"))
    assert verdict.verdict != "error" and verdict.skipped_images == (str(bad),)
    skipped = [r.message for r in verdict.reasons if r.code == "SKIPPED_IMAGE"]
    assert len(skipped) == 1 and str(bad) in skipped[0] and "damaged" in skipped[0]
    assert verdict.reasons[0].code == "VISUAL_MATCH"


@pytest.mark.parametrize("frames", [1, 3])
def test_an_animated_photo_says_its_later_frames_were_not_checked(small_index, tmp_path, frames):
    """Only the first frame of an animated GIF is checked: a seller can show the logo in a later one. That was
    silent (a plain no_match); the result now says which file and how many frames."""
    gif = tmp_path / "anim.gif"
    images = [textured_image(20 + k, (240, 240)) for k in range(frames)]
    images[0].save(gif, save_all=True, append_images=images[1:], duration=100, loop=0)
    detector = Detector(small_index, Policy(text=TextSettings(enabled=False)))
    verdict = detector.check(Listing(images=[gif], title="a thing", seller="shop-x", listing_id="L5"))
    notes = [r.message for r in verdict.reasons if r.code == "FRAMES_NOT_CHECKED"]
    if frames == 1:
        assert notes == []
    else:
        assert notes == [f"{gif}: only the first of its 3 frames was checked (an animated or multi-page image)"]


def test_a_listing_naming_many_photos_is_checked_on_its_first_fifty_each_file_once(small_index, tmp_path):
    """A listings.csv row naming one photo 60 times held 60 decoded copies at once (4 MB each at 1024 px) and
    read each one's text; thousands would end the scan for lack of memory, again on every rerun."""
    from knockoff.decide.detector import MAX_PHOTOS, decode_listing

    same = tmp_path / "same.png"
    textured_image(5, (200, 200)).save(same)
    assert len(decode_listing(Listing(images=[same] * 60, listing_id="D"), min_side=64).images) == 1
    many = []
    for k in range(MAX_PHOTOS + 3):
        many.append(tmp_path / f"p{k:02d}.png")
        textured_image(k, (64, 64)).save(many[-1])
    loaded = decode_listing(Listing(images=many, listing_id="M"), min_side=64)
    assert len(loaded.images) == MAX_PHOTOS and loaded.skipped == [str(p) for p in many[MAX_PHOTOS:]]
    detector = Detector(small_index, Policy(text=TextSettings(enabled=False)))
    verdict = detector.check(Listing(images=many, title="thing", seller="shop-x", listing_id="M"))
    notes = [r.message for r in verdict.reasons if r.code == "PHOTOS_NOT_CHECKED"]
    assert notes == [f"3 of the listing's {MAX_PHOTOS + 3} photos were not checked, from {many[MAX_PHOTOS]}: "
                     f"at most {MAX_PHOTOS} are"]
