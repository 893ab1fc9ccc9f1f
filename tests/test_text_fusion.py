"""How the photo text and the packaging match choose the brand and product (pure functions, no OCR engine): the
product words that single out a product within its brand, a brand named word by word, the packaging match
among the products of the brand the text names, and text that names no brand."""

from __future__ import annotations

from dataclasses import replace

from pathlib import Path

import pytest

from knockoff.catalog.readers import Brand, ReferenceImage
from knockoff.decide.photo_text import find_brand_mentions
from knockoff.decide.policy import TextSettings
from knockoff.decide.signals import BRAND_IN_PHOTO
from knockoff.decide.text_evidence import (
    PhotoEvidence,
    TextIdentity,
    TextMatcher,
    package_within_brand,
    packaging_contradicts,
)
from knockoff.match.text import PhotoText, TextBox
from knockoff.match.text_index import ProductTexts, ReferenceTexts, product_key
from knockoff.match.verify import GeometricMatch, PackagingSettings

BOX = ((0.0, 0.0), (10.0, 0.0), (10.0, 5.0), (0.0, 5.0))
ARLA, ALPRO, VALIO, GOD_MORGON = Brand("Arla"), Brand("Alpro"), Brand("Valio"), Brand("God Morgon")
BRANDS = (ARLA, ALPRO, VALIO, GOD_MORGON, Brand("Garant"))
PRODUCTS = {  # (brand, product id) -> the texts of its reference photos and its name
    ("Arla", "fil"): ["Arla Sour Milk", "Arla", "FIL", "SOMMARFIL", "3% FETT"],
    ("Arla", "laktosfri"): ["Arla Lactose Free Milk", "Arla", "LAKTOSFRI", "MJÖLK", "1,5% FETT"],
    ("Arla", "mellan"): ["Arla Medium Fat Milk", "Arla", "MELLANMJÖLK", "MJÖLK", "1,5% FETT"],
    ("Alpro", "blueberry"): ["Alpro Blueberry Soyghurt", "alpro", "Mild & Creamy", "BLÅBÄR"],
    ("Alpro", "vanilla"): ["Alpro Vanilla Soyghurt", "alpro", "Mild & Creamy", "VANILJ"],
    ("Valio", "vanilla"): ["Valio Vanilla Yoghurt", "Valio", "Vanilj"],
    ("God Morgon", "orange"): ["God Morgon Orange Juice", "God Morgon", "APELSIN"],
    ("God Morgon", "apple"): ["God Morgon Apple Juice", "God Morgon", "ÄPPLE"],
    ("Garant", "eko"): ["Garant Ecological Milk", "Garant", "EKOLOGISK", "MJÖLK"],
    # one carton, two products; the small official photos read "ORIGINAL" on one and "ORIGNAL" on the other
    ("Soya", "fresh"): ["Soya Fresh Soy Milk", "Soya", "ORIGNAL", "EKO"],
    ("Soya", "shelf"): ["Soya Shelf Soy Milk", "Soya", "ORIGINAL"],
}


def photo(*lines: str) -> PhotoText:
    return PhotoText(tuple(TextBox(line, 0.99, BOX) for line in lines), "test")


def key(brand: str, product: str) -> str:
    return product_key(brand, product)


def texts() -> ProductTexts:
    return ProductTexts.build({key(*k): v for k, v in PRODUCTS.items()})


@pytest.fixture(scope="module")
def matcher() -> TextMatcher:
    references = {i: ReferenceImage(brand, pid, pid, Path(f"{pid}.png"))
                  for i, (brand, pid) in enumerate(PRODUCTS)}
    return TextMatcher(BRANDS, references, ReferenceTexts({}, texts()), TextSettings(enabled=True))


def evidence(*photos: tuple[str, ...]) -> PhotoEvidence:
    read = tuple(photo(*lines) for lines in photos)
    return PhotoEvidence(read, tuple(f"p{i}.jpg" for i in range(len(read))), tuple((100, 100) for _ in read),
                         find_brand_mentions(read, BRANDS))


# -- product words within a brand -------------------------------------------------------------------------


@pytest.mark.parametrize(("lines", "among", "expected"), [
    (("Arla", "SOMMARFIL"), "Arla", "fil"),                 # a word only this product shows
    (("LAKTOSFRI", "MJÖLK"), "Arla", "laktosfri"),          # MJÖLK is shared, LAKTOSFRI singles it out
    (("MJÖLK", "1,5% FETT"), "Arla", None),                 # only words two siblings share
    (("LAKTOSFRI", "SOMMARFIL"), "Arla", None),             # two products singled out: neither
    (("Arla",), "Arla", None),                              # the brand's own name names no product
    (("alpro", "Mild & Creamy"), "Alpro", None),            # the soyghurts' shared words
    (("alpro", "VANILJ", "Mild"), "Alpro", "vanilla"),
    (("Vanilj",), "Valio", "vanilla"),                      # a brand's only product: any of its words
    (("EKOLOGISK",), "Arla", None),                         # another brand's word
    (("ORIGINAL",), "Soya", None),                          # the sibling's reading lacks it by one letter only
    (("ORIGINAL", "EKO"), "Soya", "fresh"),                 # EKO (three letters: exact) still does
])
def test_product_words_single_out_a_product_within_its_brand(lines, among, expected):
    products = [key(b, p) for b, p in PRODUCTS if b == among]
    found = texts().single_out([photo(*lines)], products, ignore={"arla", "alpro", "valio", "soya"})
    assert (found.product_id if found else None) == (key(among, expected) if expected else None)
    if found:
        assert found.words and found.score > 0


@pytest.mark.parametrize(("lines", "brand", "product", "words"), [
    (("Arla", "LAKTOSFRI", "MJÖLK"), "Arla", "laktosfri", ("LAKTOSFRI", "MJÖLK")),
    (("Arla", "MJÖLK"), "Arla", None, ()),                  # the brand, not which of its milks
    (("alpro", "Mild & Creamy"), "Alpro", None, ()),
    (("GOD", "MOR GON", "APELSIN"), "God Morgon", "orange", ("APELSIN",)),  # the name read word by word
])
def test_identify_names_the_brand_and_a_product_only_when_singled_out(matcher, lines, brand, product, words):
    identity = matcher.identify(evidence(lines))
    assert identity is not None and identity.brand.name == brand
    assert identity.product == (key(brand, product) if product else None)
    assert identity.words == words


@pytest.mark.parametrize("photos", [
    (("EKOLOGISK", "MJÖLK"),),                 # product words of a catalog product, but no brand name
    (("BANAN", "KRAV", "Ursprung: Ecuador"),),  # produce labels
    (("ÄPPLE", "Jonagold", "29.90 kr/kg"),),
    (("GOD",),),                               # one word of a two-word brand
    (("MORGON", "APELSIN"),),
    (("GOD",), ("MORGON",)),                   # the words of the name in two different photos
    ((),),                                     # nothing read
])
def test_text_without_a_brand_name_gives_no_brand(matcher, photos):
    assert matcher.identify(evidence(*photos)) is None


@pytest.mark.parametrize(("photos", "brand", "how"), [
    ((("ARLA", "ALPRO"),), "Alpro", "exact"),          # two brands named exactly: by name (ties are kept stable)
    ((("Arla", "Alpra"),), "Arla", "exact"),           # the brand read in its own spelling before a misspelled one
    ((("Arlo", "LAKTOSFRI"),), "Arla", "misspelled"),  # a misspelling still names the brand
])
def test_identify_between_brands(matcher, photos, brand, how):
    found = evidence(*photos)
    identity = matcher.identify(found)
    assert identity is not None and identity.brand.name == brand
    assert any(m.brand == brand and m.how == how for m in found.mentions)


# -- the packaging match within the brand the text names --------------------------------------------------


def package(inliers: int, passes: bool = True, detail: float | None = 0.8) -> GeometricMatch:
    """A listing photo's match with one official photo that passes the packaging checks (or is mirrored), with
    ``detail`` of the official photo's small print reproduced (enough to name its product by default)."""
    return GeometricMatch(inliers=inliers, matches=inliers * 2, inlier_ratio=0.5, reference_coverage=0.6,
                          listing_coverage=0.5, mirrored=not passes, rotation_deg=0.0, scale=1.0, verified=False,
                          failed_check="pixels", reference_box=((0, 0), (1, 0), (1, 1), (0, 1)), anisotropy=1.2,
                          inlier_spread=0.2, geometry_verified=True, detail_agreement=detail)


ARLA_FIL, ARLA_LAKTOSFRI, ARLA_MELLAN = key("Arla", "fil"), key("Arla", "laktosfri"), key("Arla", "mellan")


@pytest.mark.parametrize(("words_pick", "items", "product", "position"), [
    # another brand's similar carton beats the text's brand by far: the text names the brand, only its products count
    (None, [(key("Garant", "eko"), package(80)), (ARLA_MELLAN, package(40))], ARLA_MELLAN, 1),
    # two of the brand's products about as close: no product (the sibling margin)
    (None, [(ARLA_MELLAN, package(40)), (ARLA_LAKTOSFRI, package(37))], None, None),
    # a sibling that fails the checks still counts against the margin
    (None, [(ARLA_MELLAN, package(40)), (ARLA_LAKTOSFRI, package(38, passes=False))], None, None),
    # the words single out the package's product: it
    (ARLA_MELLAN, [(ARLA_MELLAN, package(40)), (ARLA_FIL, package(10))], ARLA_MELLAN, 0),
    # the words single out another product than the package: the evidence disagrees, the brand only
    (ARLA_LAKTOSFRI, [(ARLA_MELLAN, package(40)), (ARLA_FIL, package(10))], None, None),
    # no package of the brand passes: the words' product stays
    (ARLA_FIL, [(ARLA_MELLAN, package(9)), (key("Garant", "eko"), package(60))], ARLA_FIL, None),
    # a sibling's package passes within the margin, the words' product's match fails the checks (a neighbour
    # on the shelf, whose words the photo shows too): the words are refuted, the brand only
    (ARLA_FIL, [(ARLA_MELLAN, package(28)), (ARLA_FIL, package(33, passes=False))], None, None),
    (ARLA_FIL, [(ARLA_MELLAN, package(28)), (ARLA_FIL, package(30))], ARLA_FIL, None),  # both pass: words stand
    # several other products pass alike (the brand's shared design): the package names none, the words stand
    (ARLA_FIL, [(ARLA_MELLAN, package(25)), (ARLA_LAKTOSFRI, package(23)), (ARLA_FIL, package(20, passes=False))],
     ARLA_FIL, None),
    # the package wins by its keypoints but reproduces too little of its print to tell it from a sibling sharing
    # the design (one missing from the catalog): no product by the package ...
    (None, [(key("Garant", "eko"), package(80)), (ARLA_MELLAN, package(40, detail=0.4))], None, None),
    (None, [(ARLA_MELLAN, package(40, detail=None))], None, None),  # ... nor when its print was not compared
    # ... and the words' product, which the package does not refute, stands; one the package refutes does not
    (ARLA_MELLAN, [(ARLA_MELLAN, package(40, detail=0.4))], ARLA_MELLAN, None),
    (ARLA_FIL, [(ARLA_MELLAN, package(40, detail=0.4)), (ARLA_FIL, package(20, passes=False))], None, None),
    (None, [], None, None),
])
def test_package_within_the_brand_the_text_names(words_pick, items, product, position):
    identity = TextIdentity(ARLA, words_pick, ("W",) if words_pick else (), 0)
    fused = package_within_brand(identity, items, PackagingSettings())
    assert fused.brand == ARLA  # the text's brand is never changed by a package
    assert (fused.product, fused.package) == (product, position)


def mirrored(inliers: int) -> GeometricMatch:
    return package(inliers, passes=False)


@pytest.mark.parametrize(("items", "other"), [
    # a neighbour's package on the shelf matches, the text's brand's none: its name is the neighbour's too
    ([(key("Garant", "eko"), package(14)), (ARLA_MELLAN, package(0))], "garant"),
    # ... only when it passes the packaging checks: a few chance matches (letters alike), or a degenerate or
    # clustered fit, say nothing of a package (on a catalog of many brands some other brand always has some)
    ([(key("Garant", "eko"), package(11)), (ARLA_MELLAN, package(0))], None),
    ([(key("Garant", "eko"), replace(package(30), reference_box=None)), (ARLA_MELLAN, package(0))], None),
    ([(key("Garant", "eko"), replace(package(30), inlier_spread=0.01)), (ARLA_MELLAN, package(0))], None),
    ([(key("Garant", "eko"), package(30)), (ARLA_MELLAN, package(20))], "garant"),  # by the margin
    ([(key("Garant", "eko"), package(30)), (ARLA_MELLAN, package(25))], None),      # within the margin
    ([(key("Garant", "eko"), package(4))], None),                                   # below the packaging lead
    ([(key("Garant", "eko"), mirrored(40)), (ARLA_MELLAN, package(3))], None),     # a mirrored match: nothing
    ([(ARLA_MELLAN, package(40)), (ARLA_FIL, package(10))], None),                  # only the text's brand
    ([], None),
])
def test_packaging_that_favours_another_brand_contradicts_the_text(items, other):
    assert packaging_contradicts(TextIdentity(ARLA, None, (), 0), items, PackagingSettings()) == other


# -- a visual match whose photo names another brand -------------------------------------------------------


def test_a_visual_match_keeps_its_brand_and_says_which_other_brand_the_photo_names(matcher):
    """The visual proof decides the product (the detector reads the text for its signals only); a photo that
    names another catalog brand is said, never dropped."""
    found = evidence(("ALPRO", "VANILJ"))
    named = matcher.signals(found, ARLA, seller_authorized=False)[0]
    assert named.code == BRAND_IN_PHOTO and named.state == "clear"
    assert named.details["other_brands"] == ["Alpro"] and "also names Alpro" in named.message


# -- the detector: a look-alike carton of another brand, told apart by the brand printed on it ----------------


@pytest.fixture(scope="module")
def look_alike(tmp_path_factory):
    """Acme's wallet and belt packages, and Norda's wallet printed with the very artwork of Acme's: the packaging
    match alone cannot tell Acme's wallet from Norda's."""
    from conftest import textured_image, write_csv

    root = tmp_path_factory.mktemp("look-alike")
    textured_image(3).save(root / "wallet.png")
    textured_image(3).save(root / "norda-wallet.png")
    textured_image(1).save(root / "belt.png")
    textured_image(4).save(root / "watch.png")
    write_csv(root / "brands.csv", ["brand", "aliases", "authorized_sellers"],
              [["Acme", "", "acme-store"], ["Norda", "", "norda-store"], ["Globex", "", "globex-store"]])
    write_csv(root / "references.csv", ["brand", "product_id", "product_name", "image", "price", "currency"],
              [["Acme", "wallet", "Acme wallet", "wallet.png", 20, "USD"],
               ["Globex", "watch", "Globex watch", "watch.png", 20, "USD"],
               ["Acme", "belt", "Acme belt", "belt.png", 20, "USD"],
               ["Norda", "wallet", "Norda wallet", "norda-wallet.png", 20, "USD"]])
    return root


@pytest.mark.parametrize(("printed", "brand", "product"), [
    ("ACME", "Acme", "wallet"),
    ("NORDA", "Norda", "wallet"),
    ("SALE", None, None),  # no brand named: the packaging alone cannot choose, no match
    ("GLOBEX", None, None),  # a brand whose packaging the photo does not show, another's it does: not taken
])
def test_the_text_brand_lets_the_packaging_choose_among_its_products(look_alike, tmp_path, monkeypatch,
                                                                     printed, brand, product):
    from PIL import Image
    from test_packaging import no_copy_verifier, rephotograph

    from knockoff.catalog.readers import Catalog, Listing
    from knockoff.decide import detector as detector_module
    from knockoff.decide.detector import Detector
    from knockoff.decide.policy import Policy
    from knockoff.match import verify
    from knockoff.match.index import build_index

    if not verify.opencv_available():
        pytest.skip("OpenCV with SIFT is not installed")
    shot = tmp_path / "shelf.jpg"
    rephotograph(Image.open(look_alike / "wallet.png"), seed=1).save(shot, quality=90)
    read = (photo(printed),)

    def printed_text(self, images, paths, reading=None):
        return PhotoEvidence(read, (str(shot),), ((100, 100),), find_brand_mentions(read, self.brands))

    monkeypatch.setattr(detector_module, "reader_status", lambda settings=None: None)  # no OCR engine needed
    monkeypatch.setattr(TextMatcher, "read", printed_text)
    index = build_index(Catalog.from_dir(look_alike), "perceptual")
    policy = Policy(packaging_match=True, text=TextSettings(enabled=True))
    verdict = Detector(index, policy, verifier=no_copy_verifier()).check(Listing([shot], seller="x"))
    if brand is None:
        assert verdict.match is None or verdict.match.tier is None
        assert ("not taken as Globex's" in verdict.reasons[0].message) == (printed == "GLOBEX")
        return
    assert verdict.match is not None and verdict.match.tier == "text"
    assert (verdict.match.brand, verdict.match.product_id) == (brand, product)
    assert verdict.match.verification is not None and verdict.match.reference_image.endswith("wallet.png")
    assert verdict.match.verification["inliers"] >= PackagingSettings().min_inliers
    visual = verdict.reasons[0].message
    assert f"among the products of {brand}, which the photo's text names" in visual
    assert "keypoints on the listing's packaging match official photo" in visual


@pytest.mark.parametrize(("words_name", "product", "tier", "verdict"), [
    ("pear", "pear", "text", "suspect"),  # the words name one of the alike packages: that product
    ("apple", "apple", "text", "suspect"),
    ("plum", "", "same-package", "review"),  # a product whose package does not match: the brand only
    (None, "", "same-package", "review"),  # no words: the brand only
])
def test_the_words_name_which_of_the_alike_sibling_packages(tmp_path, monkeypatch, words_name, product, tier,
                                                            verdict):
    from PIL import Image
    from test_packaging import _siblings_catalog, no_copy_verifier, rephotograph

    from conftest import textured_image
    from knockoff.catalog.readers import Catalog, Listing
    from knockoff.decide import detector as detector_module
    from knockoff.decide.detector import Detector
    from knockoff.decide.policy import Policy
    from knockoff.match import verify
    from knockoff.match.index import build_index

    if not verify.opencv_available():
        pytest.skip("OpenCV with SIFT is not installed")
    root = _siblings_catalog(tmp_path / "refs")
    textured_image(7).save(root / "plum.png")
    with open(root / "references.csv", "a", encoding="utf-8") as handle:
        handle.write("Juicy,plum,Juicy Plum,plum.png,3,EUR\n")
    shot = tmp_path / "shelf.jpg"
    rephotograph(Image.open(root / "apple.png"), seed=3).save(shot, quality=90)
    read = (photo("FRESH"),)

    def no_brand_read(self, images, paths, reading=None):
        return PhotoEvidence(read, (str(shot),), ((100, 100),), ())

    def words(self, evidence, brand, product=None):
        return (key("Juicy", words_name), (words_name.upper(),)) if words_name and product is None else (None, ())

    monkeypatch.setattr(detector_module, "reader_status", lambda settings=None: None)  # no OCR engine needed
    monkeypatch.setattr(TextMatcher, "read", no_brand_read)
    monkeypatch.setattr(TextMatcher, "product_words", words)
    index = build_index(Catalog.from_dir(root), "perceptual")
    policy = Policy(packaging_match=True, text=TextSettings(enabled=True))
    result = Detector(index, policy, verifier=no_copy_verifier()).check(Listing([shot], seller="x"))
    assert result.match is not None and result.match.brand == "Juicy"
    assert (result.match.product_id, result.match.tier, result.verdict) == (product, tier, verdict)
    visual = result.signal("VISUAL_MATCH")
    assert visual.details["brand_only"] is True
    assert ("the photo's words" in visual.message) is bool(product)
