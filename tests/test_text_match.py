"""Brand mentions, product words and the photo-text signals (pure functions, no OCR engine needed)."""

from __future__ import annotations

import pytest

from knockoff.catalog.readers import Brand
from knockoff.decide.photo_text import (
    BRAND_IN_PHOTO,
    MISSPELLED_BRAND_IN_PHOTO,
    TextMatchSettings,
    brand_in_photo,
    confirm_misspellings,
    find_brand_mentions,
    merge_replica_terms,
    misspelled_brand_in_photo,
    photo_replica_terms,
    text_unavailable,
)
from knockoff.decide.signals import REPLICA_TERMS, Signal
from knockoff.match.text import PhotoText, TextBox
from knockoff.match.text_index import ProductTexts, ReferenceTexts, match_key

BOX = ((0.0, 0.0), (10.0, 0.0), (10.0, 5.0), (0.0, 5.0))
ACME = Brand("Acme", aliases=("Acme Goods",), authorized_sellers=("acme-store",))
BRANDS = (
    ACME, Brand("Adidas"), Brand("Puma"), Brand("Samsung"), Brand("Arla"), Brand("God Morgon", aliases=("GM Juice",)),
    Brand("Tropicana"), Brand("Yoggi"), Brand("LG"),
)


def photo(*lines: str | tuple[str, float]) -> PhotoText:
    boxes = [TextBox(*(line if isinstance(line, tuple) else (line, 0.99)), BOX) for line in lines]
    return PhotoText(tuple(boxes), "test")


def mentions(*lines, settings=None):
    return {(m.brand, m.how, m.read) for m in find_brand_mentions([photo(*lines)], BRANDS, settings)}


@pytest.mark.parametrize(("text", "key"), [
    ("Arla", "arla"), ("ARLA", "arla"), ("Ar1a", "arla"), ("ARIA", "arla"), ("MJÖLK", "mjolk"),
    ("0atly!", "oatlyl"), ("5AMSUNG", "samsung"), ("Crème brûlée", "cremebrulee"), ("--", ""),
])
def test_match_key(text, key):
    assert match_key(text) == key


@pytest.mark.parametrize(("lines", "expected"), [
    (("Acme",), {("Acme", "exact", "Acme")}),
    (("ACME ORIGINAL",), {("Acme", "exact", "ACME")}),
    (("AC", "ME"), {("Acme", "exact", "AC ME")}),  # a name split over two boxes
    (("ACME GOODS",), {("Acme", "exact", "ACME"), }),
    (("Acne",), {("Acme", "misspelled", "Acne")}),
    (("AKME",), {("Acme", "misspelled", "AKME")}),
    (("ACMF",), {("Acme", "misspelled", "ACMF")}),
    (("Abibas",), {("Adidas", "misspelled", "Abibas")}),
    (("FUMA",), {("Puma", "misspelled", "FUMA")}),
    (("Sansumg",), {("Samsung", "misspelled", "Sansumg")}),
    (("GOD", "MORGON"), {("God Morgon", "exact", "GOD MORGON")}),
    (("Tropicama juice",), {("Tropicana", "misspelled", "Tropicama")}),
    (("Ar1a",), {("Arla", "exact", "Ar1a")}),  # an OCR confusion, not a misspelling
    (("CArla",), {("Arla", "exact", "CArla")}),  # a stray mark read as a letter before the name
    (("LGX",), set()),  # too short for the stray-letter rule
    (("Arrla",), {("Arla", "misspelled", "Arrla")}),
    (("Alra",), {("Arla", "misspelled", "Alra")}),  # two letters swapped: one edit
    (("Tropiacna",), {("Tropicana", "misspelled", "Tropiacna")}),
    (("Trpoiacna",), {("Tropicana", "misspelled", "Trpoiacna")}),  # two swaps: two edits, allowed for 9 letters
    (("Saumsng",), {("Samsung", "misspelled", "Saumsng")}),
])
def test_brand_mentions(lines, expected):
    assert mentions(*lines) == expected


@pytest.mark.parametrize("lines", [
    ("FREE SHIPPING", "ORGANIC"), ("LOW FAT MILK",), ("SALE -70%",), ("LC",), ("MG",),  # LG: too short to misspell
    ("yogg",),  # the start of "Yoggi" cut off at the edge, not a misspelling
    ("Tropic",),
    (("Acne", 0.5),),  # read with a low recogniser score
    ("Axxa",), ("Tropxxxna",), ("Sxmxuxg",),  # more edits than a name of that length allows
])
def test_no_mentions(lines):
    assert mentions(*lines) == set()


def test_exact_spelling_in_photo_suppresses_misspellings():
    assert mentions("Arla", "Arlo") == {("Arla", "exact", "Arla")}


def test_alias_is_a_genuine_spelling():
    found = find_brand_mentions([photo("GM JUICE")], BRANDS)
    assert [(m.brand, m.how) for m in found] == [("God Morgon", "alias")]


def test_mentions_span_photos_and_boxes():
    found = find_brand_mentions([photo("nothing here"), photo("big", "Acne", "sale")], BRANDS)
    assert [(m.photo, m.boxes) for m in found] == [(1, (1,))]


def test_unreadable_photos_contribute_nothing():
    texts = [PhotoText((), "test", unavailable="no engine")]
    assert find_brand_mentions(texts, BRANDS) == ()
    assert text_unavailable(texts) == "no engine"
    assert text_unavailable([photo("x")]) is None


@pytest.mark.parametrize(("authorized", "state"), [(False, "hit"), (True, "clear"), (None, "unknown")])
def test_brand_in_photo_states(authorized, state):
    texts = [photo("Acme", "SOMMARFIL")]
    signal = brand_in_photo(texts, find_brand_mentions(texts, BRANDS), ACME, seller_authorized=authorized,
                            product_words=("SOMMARFIL",))
    assert isinstance(signal, Signal) and signal.code == BRAND_IN_PHOTO and signal.state == state
    assert "the photo shows 'Acme' and 'SOMMARFIL'" in signal.message


@pytest.mark.parametrize(("texts", "state"), [
    ([photo("nothing")], "clear"),
    ([PhotoText((), "test", unavailable="rapidocr missing")], "unknown"),
])
def test_brand_in_photo_without_the_name(texts, state):
    signal = brand_in_photo(texts, (), ACME, seller_authorized=False)
    assert signal.state == state
    if state == "unknown":
        assert "rapidocr missing" in signal.message


@pytest.mark.parametrize(("lines", "unavailable", "state"), [
    (("AKME",), None, "hit"), (("ACME",), None, "clear"), ((), "no engine", "unknown"), ((), None, "clear"),
])
def test_misspelled_brand_signal(lines, unavailable, state):
    texts = [PhotoText((), "t", unavailable=unavailable)] if unavailable else [photo(*lines)]
    signal = misspelled_brand_in_photo(texts, find_brand_mentions(texts, BRANDS), ACME)
    assert signal.code == MISSPELLED_BRAND_IN_PHOTO and signal.state == state
    if state == "hit":
        assert "'AKME'" in signal.message


@pytest.mark.parametrize(("lines", "state", "terms"), [
    (("REPLICA 1:1",), "hit", ["replica", "1:1"]), (("ORIGINAL",), "clear", []), ((), "clear", []),
])
def test_photo_replica_terms(lines, state, terms):
    signal = photo_replica_terms([photo(*lines)], ("replica", "1:1", "AAA"))
    assert signal.code == REPLICA_TERMS and signal.state == state
    assert list(signal.details.get("terms", [])) == terms


@pytest.mark.parametrize(("title", "photo_state", "state"), [
    ("hit", "clear", "hit"), ("clear", "hit", "hit"), ("clear", "clear", "clear"), ("clear", "unknown", "unknown"),
])
def test_merge_replica_terms(title, photo_state, state):
    make = lambda s, src: Signal(REPLICA_TERMS, s, f"{src} {s}", {"terms": ["dupe"]} if s == "hit" else {})  # noqa: E731
    merged = merge_replica_terms(make(title, "title"), make(photo_state, "photo"))
    assert merged.state == state


def test_merge_replica_terms_rejects_other_codes():
    with pytest.raises(ValueError):
        merge_replica_terms(Signal("X", "clear", ""), Signal(REPLICA_TERMS, "clear", ""))


def _catalog_texts() -> ProductTexts:
    return ProductTexts.build({
        "arla-fil": ["Arla Sour Milk", "Arla", "FIL", "SOMMARFIL", "3% FETT"],
        "arla-laktosfri": ["Arla Lactose Free Milk", "Arla", "LAKTOSFRI", "MJÖLK", "1,5% FETT"],
        "garant-eko": ["Garant Ecological Milk", "Garant", "EKOLOGISK", "MJÖLK"],
    })


@pytest.mark.parametrize(("lines", "best", "matched"), [
    (("Arla", "SOMMARFIL"), "arla-fil", ("Arla", "SOMMARFIL")),
    (("LAKTOSFRI", "mjölk"), "arla-laktosfri", ("LAKTOSFRI", "mjölk")),
    (("EKOLOGISK MJOLK",), "garant-eko", ("EKOLOGISK", "MJOLK")),
])
def test_product_words(lines, best, matched):
    found = _catalog_texts().match([photo(*lines)])
    assert found[0].product_id == best and found[0].words == matched
    assert all(found[0].score >= m.score for m in found)


def test_rare_words_weigh_more():
    texts = _catalog_texts()
    assert texts.weights[match_key("SOMMARFIL")] > texts.weights[match_key("Arla")]
    assert texts.weights[match_key("LAKTOSFRI")] > texts.weights[match_key("MJÖLK")]


def test_product_words_ignore_numbers_and_round_trip():
    texts = _catalog_texts()
    assert texts.match([photo("3%", "1000")]) == ()
    again = ProductTexts.from_dict(texts.to_dict())
    assert again.words == texts.words and again.match([photo("SOMMARFIL")]) == texts.match([photo("SOMMARFIL")])


@pytest.mark.parametrize("kwargs", [{"min_brand_length": 2}, {"min_misspelling_score": 1.5}, {"max_join": 0}])
def test_settings_are_validated(kwargs):
    with pytest.raises(ValueError):
        TextMatchSettings(**kwargs)


def test_reference_texts_save_and_load(tmp_path):
    photos = {"refs/a.jpg": photo("Arla", "SOMMARFIL"), "refs/b.jpg": PhotoText((), "t", unavailable="no engine")}
    texts = ReferenceTexts.build(photos, {"refs/a.jpg": "arla-fil", "refs/b.jpg": "garant-eko"},
                                 {"arla-fil": ["Arla Sour Milk", "Arla"], "garant-eko": ["Garant Milk", "Garant"]})
    assert texts.unreadable == {"refs/b.jpg": "no engine"}
    assert texts.products.match([photo("sommarfil")])[0].product_id == "arla-fil"
    texts.save(tmp_path)
    again = ReferenceTexts.load(tmp_path)
    assert again == texts
    assert ReferenceTexts.load(tmp_path / "nowhere") is None


def test_reference_texts_load_rejects_a_damaged_file(tmp_path):
    from knockoff.errors import IndexCorruptError

    (tmp_path / "texts.json").write_text('{"format": 1, "photos": {}}', encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="texts.json"):
        ReferenceTexts.load(tmp_path)


# -- a misspelling is read twice before it stands ------------------------------------------------------------


@pytest.mark.parametrize(("first", "again", "how", "read", "state"), [
    ("Arlo", ("Arla", "Arla", "Aro"), "exact", "Arla", "clear"),        # a slip: the name is printed
    ("Arlo", ("Arlo", "Arlo.", "ARLO"), "misspelled", "Arlo", "hit"),    # read the same every time
    ("AKME", ("AKME", "ACME GOODS", "AKME"), "exact", "ACME", "clear"),  # the name, within an alias
    ("Arlo", ("Arlo", "Ar", "Arlo"), "unconfirmed", "Arlo", "unknown"),  # one reading is no misspelling
    ("Arlo", (), "unconfirmed", "Arlo", "unknown"),                      # could not be read again
    ("Adibas", ("Adibas", "Abibas", "Adibas"), "misspelled", "Adibas", "hit"),  # other misspellings of it
])
def test_confirm_misspellings(first, again, how, read, state):
    texts = [photo("Fresh milk", first)]
    found = find_brand_mentions(texts, BRANDS)
    assert [m.how for m in found] == ["misspelled"]
    asked = []

    def reread(photo_number, box):
        asked.append((photo_number, box))
        return again

    confirmed = confirm_misspellings(found, BRANDS, reread)
    assert asked == [(0, 1)]
    assert [(m.how, m.read) for m in confirmed] == [(how, read)]
    brand = next(b for b in BRANDS if b.name == confirmed[0].brand)
    assert misspelled_brand_in_photo(texts, confirmed, brand).state == state
    named = brand_in_photo(texts, confirmed, brand, seller_authorized=True)
    assert (f"first read as '{first}'" in named.message) == (how != "misspelled" and how != "unconfirmed")
    assert confirmed[0].to_dict().get("first_read", "") == (first if how in ("exact", "alias") else "")


def test_confirm_misspellings_of_a_name_of_two_words():
    texts = [photo("GOD MORCON")]  # one letter from God Morgon, in one line
    found = find_brand_mentions(texts, BRANDS)
    assert [(m.how, m.boxes) for m in found] == [("misspelled", (0,))]
    again = ("GOD MORGON", "GOD MORCON", "GODMORCON")
    confirmed = confirm_misspellings(found, BRANDS, lambda _photo, _box: again)
    assert [(m.how, m.read) for m in confirmed] == [("exact", "GOD MORGON")]


def test_confirm_misspellings_leaves_other_mentions_alone():
    found = find_brand_mentions([photo("Arla", "Puma")], BRANDS)

    def never(*_):
        raise AssertionError("only a misspelling is read again")

    assert confirm_misspellings(found, BRANDS, never) == found
