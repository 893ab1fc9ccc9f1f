"""What the text read from a listing's photos adds to a check when ``Policy.text.enabled``: the catalog brands
it names, the products whose words it shows, and the photo-text signals, with the text boxes read so that a
report can draw them.

Every photo-text signal with a mention carries, in its ``details``:

- ``mentions``: ``[{brand, how, read, spelling, distance, score, photo, boxes}]``; ``photo`` is the listing
  photo's position, ``boxes`` the positions of the boxes the mention spans in that photo's ``boxes`` below;
- ``photo_text``: one entry a listing photo, ``{photo, image, size, engine, unavailable, boxes}``, where ``image``
  is the photo's path, ``size`` ``[width, height]`` of the decoded photo the boxes are measured in (the photo
  scaled to ``Policy.images.max_side``), and ``boxes`` ``[{text, score, box}]`` with ``box`` four ``[x, y]``
  corners clockwise from the top left.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from PIL import Image

from knockoff.catalog.readers import Brand, ReferenceImage
from knockoff.decide.photo_text import (
    BrandMention,
    brand_in_photo,
    read_brand_mentions,
    merge_replica_terms,
    misspelled_brand_in_photo,
    photo_replica_terms,
    text_unavailable,
)
from knockoff.decide.policy import TextSettings
from knockoff.decide.signals import BRAND_IN_PHOTO, MISSPELLED_BRAND_IN_PHOTO, Signal
from knockoff.match.text import (ENGINE_NAME, PhotoText, TextReading, TextReadSettings, read_text,
                                 settings_for_names, start_reading)
from knockoff.match.text_index import ReferenceTexts, match_key, product_key, split_product_key, words
from knockoff.match.siblings import pick_by_print, product_check
from knockoff.match.verify import PackagingSettings, packaging_check, pick_same_package

__all__ = ["PhotoEvidence", "TextIdentity", "TextMatcher", "package_within_brand", "packaging_contradicts",
           "read_each", "text_not_read", "unread_text"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhotoEvidence:
    """The text read from each photo of a listing and the catalog brands it names."""

    texts: tuple[PhotoText, ...]
    images: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    mentions: tuple[BrandMention, ...]

    def photo_text(self) -> list[dict[str, Any]]:
        """The text read, photo by photo, with the photo's path and the size its boxes are measured in."""
        return [{"photo": number, "image": image, "size": list(size), **text.to_dict()}
                for number, (image, size, text) in enumerate(zip(self.images, self.sizes, self.texts))]


@dataclass(frozen=True)
class TextIdentity:
    """The brand (and, when the photo shows its words, the product) that a listing's photo text names:
    ``product`` is a :func:`~knockoff.match.text_index.product_key` or None, ``words`` the product words read
    (never the brand's own names), ``photo`` the listing photo that shows the brand."""

    brand: Brand
    product: str | None
    words: tuple[str, ...]
    photo: int
    package: int | None = None  # the position, in the packaging items, of the package match that named it


def packaging_contradicts(identity: TextIdentity, items: Sequence[tuple[str, Any]],
                          settings: PackagingSettings) -> str | None:
    """The catalog brand (case-folded) whose packaging the listing photo's keypoints favour over the brand the
    text names, or None. A shelf photo often shows a neighbour's package, and its name with it: when another
    brand's official photo matches the listing as a package (it passes the packaging checks; mirrored matches
    count for nothing) by the packaging margin over every photo of the text's brand (``min_margin`` times and
    ``min_lead`` inliers more, as the packaging match requires between products), the text's brand is not taken.
    The brand's products the search and the vote did not shortlist are verified before (``Detector._identify``), so
    that its own packages are measured. A match that fails the packaging checks says nothing of a package: with no
    floor, a few chance matches (letters alike, degenerate or clustered fits: 7-12 inliers with another brand's pack
    on 21 of 40 printed misspellings, `text_check.full.default_packaging.md`) overruled the name read, and on a
    catalog of many brands some other brand always has some. The cost: a neighbour's package seen by fewer
    keypoints than the checks need (11 God Morgon inliers against none of Bravo's, "BRAVO" read beside the carton
    held up, a grocerystore val photo) no longer stops the neighbour's name.
    ``items`` as for :func:`package_within_brand`."""
    own, other, other_key = 0, 0, None
    for key, match in items:
        if match.mirrored:
            continue
        if split_product_key(key)[0] == identity.brand.key:
            own = max(own, match.inliers)
        elif match.inliers > other and packaging_check(match, settings) is None:
            other, other_key = match.inliers, key
    if other_key is None or other < settings.min_margin * own or other - own < settings.min_lead:
        return None
    return split_product_key(other_key)[0]


def package_within_brand(identity: TextIdentity, items: Sequence[tuple[str, Any]],
                         settings: PackagingSettings) -> TextIdentity:
    """The product of a brand the photo text names, from the packaging match among that brand's products only.

    ``items``: (product key, :class:`~knockoff.match.verify.GeometricMatch`) of the listing photos against the
    reference photos checked, as :func:`~knockoff.match.verify.pick_same_package` takes them. The text names
    the brand, so only the brand's own products compete: a package must pass the packaging checks and beat
    every sibling by the packaging margin (another brand's similar carton no longer hides it). When the
    photo's words single out another product of the brand than the package does, the evidence disagrees and
    no product is named (the brand only); when they agree, or the words name none, the package's product is.
    With no package singled out by its keypoints, the alike products' small print may single one out
    (:func:`~knockoff.match.siblings.pick_by_print`). A package names its product only when the match singles it
    out from a sibling sharing the design (:func:`~knockoff.match.siblings.product_check`). With none, the words'
    product stands unless the packaging refutes it (:func:`_words_refuted`).
    """
    own = [(i, key, match) for i, (key, match) in enumerate(items)
           if split_product_key(key)[0] == identity.brand.key]
    pairs = [(key, match) for _, key, match in own]
    chosen = pick_same_package(pairs, settings)
    if chosen is None:
        chosen = pick_by_print(pairs, settings)
    if chosen is not None and product_check(pairs[chosen][1], settings) is not None:
        chosen = None  # the package shows the brand's design, not which of its products (a sibling's would too)
    if chosen is None:
        return replace(identity, product=None) if _words_refuted(identity, own, settings) else identity
    position, key, _ = own[chosen]
    if identity.product is not None and identity.product != key:
        return replace(identity, product=None)
    return replace(identity, product=key, package=position)


def _words_refuted(identity: TextIdentity, own: Sequence[tuple[int, str, Any]], settings: PackagingSettings) -> bool:
    """Whether the packaging refutes the product the photo's words single out: no photo of the words' product
    passes the packaging checks, and among the brand's products whose packages do, another one wins by the
    packaging margin. A shelf photo shows the neighbours' packages and words with them ("vanilj" beside the
    strawberry yoghurt held up, whose own package is the one the checks accept); when several of the brand's
    products pass alike (a design they share, seen without its variant print), the package names none, and the
    words' product stands."""
    if identity.product is None:
        return False
    passing = [(key, match) for _, key, match in own if packaging_check(match, settings) is None]
    if any(key == identity.product for key, _ in passing):
        return False
    chosen = pick_same_package(passing, settings)
    return chosen is not None


def text_not_read(reason: str) -> tuple[Signal, Signal]:
    """``BRAND_IN_PHOTO`` and ``MISSPELLED_BRAND_IN_PHOTO`` of a listing whose photos' text was not read on
    purpose: ``unknown``, saying why (``details["not_read"]``), never a silent ``clear``."""
    message = f"the text in the photos was not read: {reason}"
    return (Signal(BRAND_IN_PHOTO, "unknown", message, {"not_read": reason}),
            Signal(MISSPELLED_BRAND_IN_PHOTO, "unknown", message, {"not_read": reason}))


def unread_text(evidence: PhotoEvidence | None) -> tuple[Signal, ...]:
    """``BRAND_IN_PHOTO`` and ``MISSPELLED_BRAND_IN_PHOTO`` of a listing that no photo or photo text ties to a
    brand, when a photo's text could not be read: ``unknown``, saying which photo and why (that photo may name a
    brand), never a silent no match; () when every photo was read (or the text was not read at all)."""
    reason = text_unavailable(evidence.texts) if evidence is not None and evidence.texts else None
    if reason is None:
        return ()
    message = f"the photo's text could not be read: {reason}; whether it names a catalog brand is not known"
    return (Signal(BRAND_IN_PHOTO, "unknown", message, {"unreadable": reason}),
            Signal(MISSPELLED_BRAND_IN_PHOTO, "unknown", message, {"unreadable": reason}))


def read_each(images: Sequence[Image.Image], paths: Sequence[Any], settings: TextReadSettings,
              reading: TextReading | None = None) -> tuple[PhotoText, ...]:
    """Each photo's text (``reading``'s, when given); a photo whose reading failed, or that could not be read,
    has its text unavailable with the reason, which names the photo's file: one photo never ends a scan."""
    texts: list[PhotoText] | None = None
    if reading is not None:
        try:
            texts = list(reading.result())
        except Exception:  # noqa: BLE001 - read again photo by photo, so that the failure is tied to its photo
            log.warning("reading the text of %d photos in the background failed; reading them one by one",
                        len(images), exc_info=True)
    if texts is None:
        texts = [_read_one(image, settings) for image in images]
    return tuple(replace(t, unavailable=f"{path}: {t.unavailable}") if t.unavailable else t
                 for t, path in zip(texts, paths))


def _read_one(image: Image.Image, settings: TextReadSettings) -> PhotoText:
    try:
        return read_text(image, settings)
    except Exception as exc:  # noqa: BLE001 - the OCR engine failing on one photo leaves its text unknown
        log.warning("reading a photo's text failed", exc_info=True)
        return PhotoText((), ENGINE_NAME, unavailable=f"reading its text failed ({type(exc).__name__}: {exc})")


def _brand_keys(brand: Brand) -> set[str]:
    return {match_key(w) for name in (brand.name, *brand.aliases) for w in (*words(name), name)}


class TextMatcher:
    """Reads a listing's photos and matches the text to an index's brands and reference texts (one per index
    generation: it keeps what it derived from the index)."""

    def __init__(self, brands: Iterable[Brand], references: Mapping[int, ReferenceImage],
                 reference_texts: ReferenceTexts | None, settings: TextSettings):
        self.brands = tuple(sorted(brands, key=lambda b: b.key))
        names = [name for brand in self.brands for name in (brand.name, *brand.aliases)]
        self.settings = replace(settings, read=settings_for_names(settings.read, names))
        self.reference_texts = reference_texts
        self._products: dict[str, list[str]] = {}  # case-folded brand -> its product keys
        self.first_reference: dict[str, int] = {}  # product key -> its first reference photo's id
        for ref_id, ref in sorted(references.items()):
            self.first_reference.setdefault(product_key(ref.brand, ref.product_id), ref_id)
        if reference_texts is not None:
            for key in reference_texts.products.words:
                self._products.setdefault(split_product_key(key)[0], []).append(key)

    def start(self, images: Sequence[Image.Image]) -> TextReading | None:
        """Start reading the photos' text in the background, for :meth:`read` (None when
        ``settings.read.overlap`` is off: then :meth:`read` reads them)."""
        return start_reading(images, self.settings.read) if self.settings.read.overlap else None

    def read(self, images: Sequence[Image.Image], paths: Sequence[Any],
             reading: TextReading | None = None) -> PhotoEvidence:
        """Read every photo's text (or wait for ``reading`` of them, :meth:`start`) and find the catalog brands it
        names."""
        texts = read_each(images, paths, self.settings.read, reading)
        mentions = read_brand_mentions(images, texts, self.brands, self.settings.read, self.settings.match)
        return PhotoEvidence(texts, tuple(str(p) for p in paths), tuple(tuple(i.size) for i in images),  # type: ignore[misc]
                             mentions)

    def product_words(self, evidence: PhotoEvidence, brand: Brand,
                      product: str | None = None) -> tuple[str | None, tuple[str, ...]]:
        """The product of ``brand`` that the photos' words single out (:meth:`ProductTexts.single_out`: a word
        against every other product of the brand; words shared by siblings name none), and those words; with
        ``product``, the words of that product the photos show (to quote them). A product is named only by a
        word that is not one of the brand's names. (None, ()) without reference texts or such a word."""
        if self.reference_texts is None:
            return None, ()
        names = _brand_keys(brand)
        texts = self.reference_texts.products
        if product is not None:
            for found in texts.match(evidence.texts, top=1, only=[product]):
                shown = tuple(w for w in found.words if match_key(w) not in names)
                if shown:
                    return found.product_id, shown
            return None, ()
        singled = texts.single_out(evidence.texts, self._products.get(brand.key, []), ignore=names)
        return (singled.product_id, singled.words) if singled is not None else (None, ())

    def identify(self, evidence: PhotoEvidence) -> TextIdentity | None:
        """The brand the photo text names, for a listing no photo of which matched: a brand read in its own
        spelling before one read misspelled, then the one whose product words the photo shows, then by name."""
        by_brand: dict[str, list[BrandMention]] = {}
        for mention in evidence.mentions:
            by_brand.setdefault(mention.brand, []).append(mention)
        ranked = []
        for brand in self.brands:
            found = by_brand.get(brand.name)
            if found:
                product, shown = self.product_words(evidence, brand)
                exact = [m for m in found if m.how in ("exact", "alias")]
                ranked.append((0 if exact else 1, -len(shown), brand.key,
                               TextIdentity(brand, product, shown, (exact or found)[0].photo)))
        return min(ranked, key=lambda item: item[:3])[3] if ranked else None

    def signals(self, evidence: PhotoEvidence, brand: Brand, *, seller_authorized: bool | None,
                product_words: Sequence[str] = ()) -> tuple[Signal, Signal]:
        """``BRAND_IN_PHOTO`` and ``MISSPELLED_BRAND_IN_PHOTO`` for ``brand``, with the boxes read. Other catalog
        brands the photos name are not ignored: ``BRAND_IN_PHOTO`` says which (``details["other_brands"]``)."""
        named = brand_in_photo(evidence.texts, evidence.mentions, brand, seller_authorized=seller_authorized,
                               product_words=product_words)
        misspelled = misspelled_brand_in_photo(evidence.texts, evidence.mentions, brand)
        others = sorted({m.brand for m in evidence.mentions if m.brand != brand.name})
        if others:
            quoted = ", ".join(others)
            named = Signal(named.code, named.state, f"{named.message}; the photo also names {quoted}",
                           {**named.details, "other_brands": others,
                            "mentions": [*named.details.get("mentions", ()),
                                         *(m.to_dict() for m in evidence.mentions if m.brand != brand.name)]})
        return self._with_boxes(named, evidence), self._with_boxes(misspelled, evidence)

    @staticmethod
    def _with_boxes(signal: Signal, evidence: PhotoEvidence) -> Signal:
        if not signal.details.get("mentions"):
            return signal
        return Signal(signal.code, signal.state, signal.message,
                      {**signal.details, "photo_text": evidence.photo_text()})

    def replica_terms(self, title_signal: Signal, evidence: PhotoEvidence, terms: Iterable[str]) -> Signal:
        """One ``REPLICA_TERMS`` from the title's signal and the photos' text."""
        return merge_replica_terms(title_signal, photo_replica_terms(evidence.texts, terms))
