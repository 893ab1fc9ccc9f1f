"""What the text read from a listing's photos says: brand names, near-misspellings of them, product words and
replica terms, turned into signals. Pure functions over :class:`knockoff.match.text.PhotoText` values.

Matching works on keys (:func:`knockoff.match.text_index.match_key`: case-folded, accents removed, the letters
an OCR engine confuses mapped to one), so that a genuine "Arla" read as "Ar1a" is not taken for a misspelling.
Keys are only compared, never shown: messages quote the text as read. The product words of the catalog
(:class:`~knockoff.match.text_index.ProductTexts`) are built at index build and stored with the index.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal

from knockoff.catalog.readers import Brand
from knockoff.decide.signals import (
    BRAND_IN_PHOTO,
    MISSPELLED_BRAND_IN_PHOTO,
    REPLICA_TERMS,
    Signal,
    State,
    edit_distance,
    replica_terms,
)
from knockoff.errors import ConfigError, ResultError
from knockoff.match.text import PhotoText, TextBox, TextReadSettings, reread_box
from knockoff.match.text_index import has_letter, match_key, words

log = logging.getLogger(__name__)

__all__ = [
    "BRAND_IN_PHOTO",
    "MISSPELLED_BRAND_IN_PHOTO",
    "BrandMention",
    "TextMatchSettings",
    "brand_in_photo",
    "confirm_misspellings",
    "find_brand_mentions",
    "read_brand_mentions",
    "merge_replica_terms",
    "misspelled_brand_in_photo",
    "photo_replica_terms",
    "text_unavailable",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class TextMatchSettings:
    """How photo text is matched to the catalog.

    A near-misspelling must be a whole word (or up to ``max_join`` neighbouring words of one line read
    together) within 1 edit of a brand name or alias of ``min_brand_length`` to 5 letters, or 2 edits of a
    longer one (then with the same first letter), read with a recogniser score of at least
    ``min_misspelling_score``; it is not reported when the photo also shows the brand's own spelling (then it
    is a misread of it). Names shorter than ``min_brand_length`` are matched exactly only. A word that is a
    name with one stray character before or after it counts as the name (a logo mark or a neighbouring
    glyph read as a letter), so a knock-off that only adds a letter at an end is reported as the name.
    """

    min_brand_length: int = 4
    min_misspelling_score: float = 0.8
    max_join: int = 3

    def __post_init__(self) -> None:
        if not _is_int(self.min_brand_length) or self.min_brand_length < 3:
            raise ConfigError(f"min_brand_length must be an integer >= 3, got {self.min_brand_length!r}")
        score = self.min_misspelling_score
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not 0.0 <= score <= 1.0:
            raise ConfigError(f"min_misspelling_score must be in [0, 1], got {self.min_misspelling_score!r}")
        if not _is_int(self.max_join) or not 1 <= self.max_join <= 4:
            raise ConfigError(f"max_join must be an integer in [1, 4], got {self.max_join!r}")


@dataclass(frozen=True)
class BrandMention:
    """A catalog brand's name found in a photo: ``how`` is ``exact`` (the name), ``alias`` (one of its
    aliases), ``misspelled`` (a near-misspelling of ``spelling``, ``distance`` edits away) or ``unconfirmed`` (a
    near-misspelling that reading the same text again did not repeat: :func:`confirm_misspellings`). ``read`` is the
    text as read; ``photo`` the photo's position in the listing and ``boxes`` the text boxes it spans."""

    brand: str
    how: Literal["exact", "alias", "misspelled", "unconfirmed"]
    read: str
    spelling: str
    distance: int
    score: float
    photo: int
    boxes: tuple[int, ...]
    first_read: str = ""  # a misspelling that reading the line again corrected: what was read first

    def to_dict(self) -> dict[str, Any]:
        out = {"brand": self.brand, "how": self.how, "read": self.read, "spelling": self.spelling,
               "distance": self.distance, "score": round(self.score, 4), "photo": self.photo,
               "boxes": list(self.boxes)}
        return {**out, "first_read": self.first_read} if self.first_read else out


@dataclass(frozen=True)
class _Span:
    read: str
    key: str
    score: float
    photo: int
    boxes: tuple[int, ...]
    within_line: bool
    line: str = ""  # the key of the whole line read, when the span lies within one box


#: names whose key is this short or shorter are found only as a line of their own (a logo): one- and two-letter
#: words are everywhere in product text ("2 x 500 ml", "XL", "AA"), so "X" inside a line says nothing
SHORT_NAME = 2


def _spans(texts: Sequence[PhotoText], max_join: int) -> list[_Span]:
    """Every word, and runs of up to ``max_join`` neighbouring words (within a line, or across lines read one
    after the other, which catches a name split over two boxes: "GOD" "MORGON")."""
    spans: list[_Span] = []
    for p, photo in enumerate(texts):
        lines = [match_key(box.text) for box in photo.boxes]
        stream = [(w, match_key(w), box.score, b) for b, box in enumerate(photo.boxes) for w in words(box.text)
                  if has_letter(w)]
        for i in range(len(stream)):
            for size in range(1, max_join + 1):
                part = stream[i : i + size]
                if len(part) < size:
                    break
                boxes = tuple(sorted({b for _, _, _, b in part}))
                spans.append(_Span(" ".join(w for w, _, _, _ in part), "".join(k for _, k, _, _ in part),
                                   min(s for _, _, s, _ in part), p, boxes, len(boxes) == 1,
                                   lines[boxes[0]] if len(boxes) == 1 else ""))
    return [s for s in spans if s.key]


def _unspaced(key: str) -> bool:
    """Whether ``key`` is written in a script that puts no spaces between words (Chinese, Japanese kana, Thai)."""
    return all(0x0E00 <= ord(c) <= 0x0E7F or 0x3040 <= ord(c) <= 0x30FF or 0x3400 <= ord(c) <= 0x9FFF
               or 0xF900 <= ord(c) <= 0xFAFF or 0x20000 <= ord(c) <= 0x2FA1F for c in key)


def _spellings(brand: Brand) -> tuple[tuple[str, str, Literal["exact", "alias"]], ...]:
    """(shown spelling, key, how) for the brand's name and aliases, the name first."""
    return _spellings_of(brand.name, brand.aliases)


@lru_cache(maxsize=4096)
def _spellings_of(name: str, aliases: tuple[str, ...]) -> tuple[tuple[str, str, Literal["exact", "alias"]], ...]:
    """:func:`_spellings`, worked out once a name and aliases (not keyed on the brand: its sellers may be many)."""
    out: list[tuple[str, str, Literal["exact", "alias"]]] = [(name, match_key(name), "exact")]
    out += [(a, match_key(a), "alias") for a in aliases]
    return tuple(s for s in out if s[1])


@lru_cache(maxsize=4096)
def _name_parts(shown: str) -> tuple[str, ...]:
    """The keys of the words of a spelling, each once, in order."""
    return tuple(k for k in dict.fromkeys(match_key(w) for w in words(shown)) if k)


def _bag_distance(a: str, b: str) -> int:
    """A lower bound of the edit distance of ``a`` and ``b``, cheap to work out: the characters of the longer
    left over when the shorter's are taken from it, as multisets (each insertion, deletion or substitution
    changes that count by at most one, a swap of neighbours not at all)."""
    rest = list(b)
    extra = 0
    for c in a:
        if c in rest:
            rest.remove(c)
        else:
            extra += 1
    return max(extra, len(rest))


def _allowed_edits(key: str, settings: TextMatchSettings) -> int:
    return 0 if len(key) < settings.min_brand_length else 1 if len(key) < 6 else 2


def _near(span: _Span, key: str, settings: TextMatchSettings) -> int | None:
    """The edit distance of a near-misspelling of ``key``, or None. A word that is the start or the end of
    the name ("YOGG" for "Yoggi") is a name cut off by the photo's or the box's edge, not a misspelling."""
    allowed = _allowed_edits(key, settings)
    if allowed == 0 or not span.within_line or span.score < settings.min_misspelling_score:
        return None
    if abs(len(span.key) - len(key)) > allowed or key.startswith(span.key) or key.endswith(span.key):
        return None
    if _bag_distance(span.key, key) > allowed:
        return None
    distance = edit_distance(span.key, key, allowed + 1)
    if distance == 2 and span.key[0] != key[0]:
        return None
    return distance if 0 < distance <= allowed else None


def _is_spelling(span: _Span, key: str, settings: TextMatchSettings) -> bool:
    """The span reads ``key``, or ``key`` with one stray character before or after it ("CArla" for a logo
    mark read as a letter) when the name is long enough to be told apart from other words. A name of up to
    :data:`SHORT_NAME` characters counts only as a line of its own; a name of two or more characters of a script
    written without spaces, also inside a run of such characters ("耐克" in "耐克运动鞋")."""
    if len(key) <= SHORT_NAME and span.line != key and not (len(key) == 2 and _unspaced(key) and key in span.line):
        return False
    if span.key == key or (len(key) >= 2 and _unspaced(key) and key in span.key):
        return True
    return (len(key) >= settings.min_brand_length and len(span.key) == len(key) + 1
            and (span.key.startswith(key) or span.key.endswith(key)))


def _word_by_word(spans: list[_Span], brand: Brand) -> list[BrandMention]:
    """A name of several words read in one photo word by word, in any order and in separate boxes ("GOD" on
    one line, "MOR" "GON" on the next): each word of the name is read exactly (alone or joined from
    neighbouring words). Only exact words: a name split apart is never taken for a misspelling."""
    found: list[BrandMention] = []
    for shown, _, how in _spellings(brand):
        parts = _name_parts(shown)
        if len(parts) < 2:
            continue
        for photo in sorted({s.photo for s in spans}):
            read = [next((s for s in spans if s.photo == photo and s.key == part), None) for part in parts]
            if all(r is not None for r in read):
                picked = [r for r in read if r is not None]
                boxes = tuple(sorted({b for r in picked for b in r.boxes}))
                found.append(BrandMention(brand.name, how, " ".join(r.read for r in picked), shown, 0,
                                          min(r.score for r in picked), photo, boxes))
    return found


def _brand_mentions(spans: list[_Span], brand: Brand, settings: TextMatchSettings) -> list[BrandMention]:
    spellings = _spellings(brand)
    exact = [BrandMention(brand.name, how, s.read, shown, 0, s.score, s.photo, s.boxes)
             for s in spans for shown, key, how in spellings if _is_spelling(s, key, settings)]
    exact += _word_by_word([s for s in spans if not any(m.photo == s.photo for m in exact)], brand)
    if exact:
        return exact
    near: list[BrandMention] = []
    for s in spans:
        found = [(d, shown) for shown, key, _ in spellings if (d := _near(s, key, settings)) is not None]
        if found:
            d, shown = min(found)
            near.append(BrandMention(brand.name, "misspelled", s.read, shown, d, s.score, s.photo, s.boxes))
    return near


def _drop_overlaps(mentions: list[BrandMention]) -> list[BrandMention]:
    """One mention per group of text boxes: the closest (then shortest) reading."""
    best: dict[tuple[int, int], BrandMention] = {}
    for m in sorted(mentions, key=lambda m: (m.distance, len(m.read))):
        if all((m.photo, b) not in best for b in m.boxes):
            for b in m.boxes:
                best[(m.photo, b)] = m
    unique = {id(m): m for m in best.values()}
    return sorted(unique.values(), key=lambda m: (m.photo, m.boxes, m.distance))


def find_brand_mentions(
    texts: Sequence[PhotoText], brands: Iterable[Brand], settings: TextMatchSettings | None = None
) -> tuple[BrandMention, ...]:
    """Every catalog brand named (exactly, by an alias, or by a near-misspelling) in the listing's photos.

    A brand whose own spelling is read anywhere in the photos gets no misspelling mentions (they are
    misreads). Photos whose text could not be read contribute nothing: check :func:`text_unavailable`.
    """
    settings = settings or TextMatchSettings()
    spans = _spans([t for t in texts if t.available] if texts else [], settings.max_join)
    if not spans:
        return ()
    lookup = _lookup(tuple(brands), settings)
    found: list[BrandMention] = []
    for position in lookup.candidates(spans, settings):
        found += _drop_overlaps(_brand_mentions(spans, lookup.brands[position], settings))
    return tuple(found)


def _deletes(key: str, most: int) -> set[str]:
    """``key`` with up to ``most`` characters deleted (itself included). Two keys within ``d`` edits (insert,
    delete, substitute, swap neighbours: each undone by at most one deletion on each side) share one of these."""
    out, layer = {key}, {key}
    for _ in range(most):
        layer = {w[:i] + w[i + 1:] for w in layer for i in range(len(w))}
        out |= layer
    return out


@dataclass(frozen=True)
class _BrandLookup:
    """The catalog's brands indexed by their spellings' keys, so that a photo's words are compared with the few
    brands they may name rather than with every brand (a check compared each of a photo's ~500 spans with each
    brand: 2 CPU seconds a photo at 5,000 brands, more than reading it). Only a filter: every brand it returns
    is judged by :func:`_brand_mentions` as before, and it returns every brand that could be named."""

    brands: tuple[Brand, ...]
    exact: dict[str, set[int]]  # a spelling's key -> the brands spelled so
    first_words: dict[str, set[int]]  # the key of a several-word spelling's first word -> those brands
    deletes: dict[str, set[int]]  # a spelling's key with up to its allowed edits deleted -> those brands
    unspaced: frozenset[int]  # brands with a name in a script without spaces (found inside runs): always judged
    longest: int  # the longest key that allows edits

    def candidates(self, spans: Sequence[_Span], settings: TextMatchSettings) -> list[int]:
        """The positions, in order, of the brands that ``spans`` may name (exactly, word by word or misspelled)."""
        found = set(self.unspaced)
        for span in spans:
            key = span.key
            for probe in (key, key[1:], key[:-1]):  # the name, or the name with a stray character at one end
                found |= self.exact.get(probe, set())
            found |= self.first_words.get(key, set())
            if self.deletes and span.within_line and len(key) <= self.longest + 2:
                for variant in _deletes(key, 2):
                    found |= self.deletes.get(variant, set())
        return sorted(found)


@lru_cache(maxsize=8)
def _lookup(brands: tuple[Brand, ...], settings: TextMatchSettings) -> _BrandLookup:
    """The :class:`_BrandLookup` of ``brands`` (built once for a catalog and its settings)."""
    exact: dict[str, set[int]] = {}
    first_words: dict[str, set[int]] = {}
    deletes: dict[str, set[int]] = {}
    unspaced, longest = set(), 0
    for position, brand in enumerate(brands):
        for shown, key, _ in _spellings(brand):
            exact.setdefault(key, set()).add(position)
            parts = _name_parts(shown)
            if len(parts) >= 2:
                first_words.setdefault(parts[0], set()).add(position)
            if _unspaced(key):
                unspaced.add(position)
            allowed = _allowed_edits(key, settings)
            if allowed:
                longest = max(longest, len(key))
                for variant in _deletes(key, allowed):
                    deletes.setdefault(variant, set()).add(position)
    return _BrandLookup(brands, exact, first_words, deletes, frozenset(unspaced), longest)


def text_unavailable(texts: Sequence[PhotoText]) -> str | None:
    """Why the photos' text could not be read (the first reason), or None when every photo was read."""
    if not texts:
        return "no photo text was read"
    return next((t.unavailable for t in texts if t.unavailable), None)


# -- signals -----------------------------------------------------------------------------------------------


def _unsearchable(brand: Brand) -> str | None:
    """Why the brand's names cannot be looked for in a photo's text (none has a letter or a digit), or None."""
    if _spellings(brand):
        return None
    return f"the brand's name '{brand.name}' and its aliases have no letter or digit to look for"


def _quote(items: Iterable[str]) -> str:
    quoted = [f"'{i}'" for i in dict.fromkeys(items)]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _of(mentions: Sequence[BrandMention], brand: Brand, how: set[str]) -> list[BrandMention]:
    return [m for m in mentions if m.brand == brand.name and m.how in how]


def brand_in_photo(
    texts: Sequence[PhotoText],
    mentions: Sequence[BrandMention],
    brand: Brand,
    *,
    seller_authorized: bool | None,
    product_words: Sequence[str] = (),
) -> Signal:
    """``BRAND_IN_PHOTO``: the item shows the brand's name (or an alias). A hit when the seller is not
    authorized, clear when it is or when no photo shows the name, unknown when the seller cannot be told or
    the text could not be read. ``mentions`` come from :func:`find_brand_mentions`; ``product_words`` (the
    ``words`` of :meth:`knockoff.match.text_index.ProductTexts.match`) are quoted in the message."""
    reason = text_unavailable(texts)
    named = _of(mentions, brand, {"exact", "alias"})
    if not named:
        if reason:
            return Signal(BRAND_IN_PHOTO, "unknown", f"the photo's text could not be read: {reason}")
        unsearchable = _unsearchable(brand)
        if unsearchable:
            return Signal(BRAND_IN_PHOTO, "unknown", f"the photo's text was not searched: {unsearchable}")
        return Signal(BRAND_IN_PHOTO, "clear", f"no photo shows the {brand.name} name")
    shows = f"the photo shows {_quote([m.read for m in named] + list(product_words))}"
    slips = [m for m in named if m.first_read]
    if slips:
        shows += f" (first read as {_quote([m.first_read for m in slips])}, read again as the name)"
    details = {"brand": brand.name, "mentions": [m.to_dict() for m in named], "product_words": list(product_words)}
    if seller_authorized is False:
        return Signal(BRAND_IN_PHOTO, "hit", f"{shows}, but the seller is not an authorized {brand.name} seller",
                      details)
    if seller_authorized is True:
        return Signal(BRAND_IN_PHOTO, "clear", f"{shows}; the seller is authorized", details)
    return Signal(BRAND_IN_PHOTO, "unknown", f"{shows}; whether the seller may sell {brand.name} is not known",
                  details)


def misspelled_brand_in_photo(texts: Sequence[PhotoText], mentions: Sequence[BrandMention], brand: Brand) -> Signal:
    """``MISSPELLED_BRAND_IN_PHOTO``: a close misspelling of the brand printed on the item (knock-off branding),
    a hit whoever the seller is. Unknown when the text could not be read."""
    wrong = _of(mentions, brand, {"misspelled"})
    if wrong:
        spelled = ", ".join(f"'{m.read}'" for m in wrong)
        return Signal(MISSPELLED_BRAND_IN_PHOTO, "hit", f"the photo spells the brand {brand.name} as {spelled}",
                      {"brand": brand.name, "mentions": [m.to_dict() for m in wrong]})
    unsure = _of(mentions, brand, {"unconfirmed"})
    if unsure:
        spelled = ", ".join(f"'{m.read}'" for m in unsure)
        return Signal(MISSPELLED_BRAND_IN_PHOTO, "unknown",
                      f"the photo may spell the brand {brand.name} as {spelled}, but reading the text again did not "
                      "give the same letters", {"brand": brand.name, "mentions": [m.to_dict() for m in unsure]})
    reason = text_unavailable(texts)
    if reason:
        return Signal(MISSPELLED_BRAND_IN_PHOTO, "unknown", f"the photo's text could not be read: {reason}")
    unsearchable = _unsearchable(brand)
    if unsearchable:
        return Signal(MISSPELLED_BRAND_IN_PHOTO, "unknown", f"the photo's text was not searched: {unsearchable}")
    return Signal(MISSPELLED_BRAND_IN_PHOTO, "clear", f"no photo shows a misspelling of {brand.name}")


def photo_replica_terms(texts: Sequence[PhotoText], terms: Iterable[str]) -> Signal:
    """``REPLICA_TERMS`` in the photos' text ("REPLICA", "1:1", "AAA" printed on the photo or the item)."""
    lines = [box.text for t in texts for box in t.boxes]
    reason = text_unavailable(texts)
    found = replica_terms(" / ".join(lines), terms) if lines else None
    if found is not None and found.hit:
        terms_found = list(found.details.get("terms", ()))
        return Signal(REPLICA_TERMS, "hit", f"the photo advertises a copy: {_quote(terms_found)}",
                      {"terms": terms_found, "source": "photo"})
    if reason:
        return Signal(REPLICA_TERMS, "unknown", f"the photo's text could not be read: {reason}", {"source": "photo"})
    return Signal(REPLICA_TERMS, "clear", "the photo shows no replica terms", {"source": "photo"})


def merge_replica_terms(title: Signal, photo: Signal) -> Signal:
    """One ``REPLICA_TERMS`` signal from the title's and the photo's: a hit when either is, clear when both
    are clear, else unknown; the message keeps both parts that say something."""
    if title.code != REPLICA_TERMS or photo.code != REPLICA_TERMS:
        raise ResultError(f"expected two {REPLICA_TERMS} signals, got {title.code} and {photo.code}")
    hits = [s for s in (title, photo) if s.hit]
    if hits:
        terms = [t for s in hits for t in s.details.get("terms", ())]
        sources = ["title" if s is title else "photo" for s in hits]
        return Signal(REPLICA_TERMS, "hit", "; ".join(s.message for s in hits),
                      {"terms": list(dict.fromkeys(terms)), "sources": sources})
    state: State = "clear" if title.state == photo.state == "clear" else "unknown"
    return Signal(REPLICA_TERMS, state, f"{title.message}; {photo.message}", {"sources": ["title", "photo"]})


# -- a misspelling read twice --------------------------------------------------------------------------------


Reread = Callable[[int, int], Sequence[str]]
"""(photo, box) -> the box's line read again from other views (match.text.reread_box), () when it cannot be."""


def _reading_spans(reading: str, settings: TextMatchSettings) -> list[_Span]:
    return _spans([PhotoText((TextBox(reading, 1.0, ((0, 0), (1, 0), (1, 1), (0, 1))),), "reread")], settings.max_join)


def _confirmed(mention: BrandMention, readings: Sequence[str], brand: Brand, settings: TextMatchSettings) -> BrandMention:
    """``mention`` (a misspelling) judged by its line read again: the brand's own spelling in any reading makes
    it a mention of the name (the first reading slipped on a letter); a near-misspelling of the same spelling in
    every reading keeps it; anything else (or no reading at all) leaves it ``unconfirmed``."""
    spans = [_reading_spans(r, settings) for r in readings]
    for shown, key, how in _spellings(brand):
        genuine = next((s for found in spans for s in found if _is_spelling(s, key, settings)), None)
        if genuine is not None:
            return replace(mention, how=how, read=genuine.read, spelling=shown, distance=0, first_read=mention.read)
    key = match_key(mention.spelling)
    repeated = all(any(_near(s, key, settings) for s in found) for found in spans)
    return mention if spans and repeated else replace(mention, how="unconfirmed")


def confirm_misspellings(mentions: Sequence[BrandMention], brands: Iterable[Brand], reread: Reread,
                         settings: TextMatchSettings | None = None) -> tuple[BrandMention, ...]:
    """Each near-misspelling read again before it may stand (a misspelled brand is a suspect whoever sells it,
    and a recogniser misreads a stylised letter now and then: "Arla" as "Arlo"). The lines of its boxes are
    read again from other views, joined in order (:func:`_confirmed`); other mentions pass unchanged."""
    settings = settings or TextMatchSettings()
    by_name = {b.name: b for b in brands}
    out = []
    for m in mentions:
        if m.how != "misspelled" or m.brand not in by_name:
            out.append(m)
            continue
        per_box = [list(reread(m.photo, b)) for b in m.boxes]
        views = [" ".join(parts) for parts in zip(*per_box)] if all(per_box) else []
        out.append(_confirmed(m, views, by_name[m.brand], settings))
    return tuple(out)


def read_brand_mentions(images: Sequence[Any], texts: Sequence[PhotoText], brands: Iterable[Brand],
                        read: TextReadSettings | None = None,
                        settings: TextMatchSettings | None = None) -> tuple[BrandMention, ...]:
    """:func:`find_brand_mentions` in ``texts`` (read from ``images``, in order), each misspelling then read
    again from ``images`` (:func:`confirm_misspellings`, :func:`knockoff.match.text.reread_box`)."""
    brands = tuple(brands)
    mentions = find_brand_mentions(texts, brands, settings)
    if not any(m.how == "misspelled" for m in mentions):
        return mentions

    done: dict[tuple[int, int], tuple[str, ...]] = {}  # each line read again once, however many names it misspells

    def reread(photo: int, box: int) -> tuple[str, ...]:
        if (photo, box) not in done:
            try:
                done[photo, box] = reread_box(images[photo], texts[photo].boxes[box], read)
            except Exception:  # noqa: BLE001 - a line that cannot be read again leaves its misspelling unconfirmed
                log.warning("reading a text line of photo %d again failed", photo, exc_info=True)
                done[photo, box] = ()
        return done[photo, box]

    return confirm_misspellings(mentions, brands, reread, settings)
