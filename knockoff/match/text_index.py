"""The reference side of text matching, built once at index build and stored in the index folder.

- :func:`match_key` / :func:`words`: how text is cut into words and compared (case-folded, accents removed,
  the letters an OCR engine confuses mapped to one: ``0``/``o``, ``1``/``l``/``i``/``|``, ``5``/``s``,
  ``8``/``b``).
- :class:`ProductTexts`: each reference product's words (its name, its brand's names, the text read from its
  reference photos), weighted by inverse document frequency over the catalog's products.
- :class:`ReferenceTexts`: the text read from every reference photo plus the :class:`ProductTexts`, saved as
  ``texts.json`` in the index folder (:meth:`ReferenceTexts.save` / :meth:`ReferenceTexts.load`), so that an
  index copied to another machine matches listing text without the catalog or the OCR of its photos.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knockoff.errors import ConfigError, IndexCorruptError, ResultError
from knockoff.match.text import PhotoText

__all__ = ["TEXTS_FILE", "ProductTexts", "ProductWordMatch", "ReferenceTexts", "has_letter", "match_key",
           "product_key", "split_product_key", "words"]

TEXTS_FILE = "texts.json"
_FORMAT = 1
_CONFUSIONS = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l", "!": "l", "5": "s", "8": "b"})
#: letters that Unicode does not decompose into a base letter and an accent, spelled as an OCR engine (whose
#: alphabet is Latin and Chinese) reads them: "ÆRØ" is read "AERO"
_FOLDS = str.maketrans({"æ": "ae", "ø": "o", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i",
                        "ħ": "h", "ŧ": "t", "ŀ": "l", "ŋ": "n", "ĸ": "k"})


def words(text: str) -> list[str]:
    """The words of ``text`` as shown: accents kept, split on anything that is not a letter or digit."""
    return [w for w in re.split(r"[^\w|!]+|_", text) if w]


def has_letter(word: str) -> bool:
    """Whether ``word`` has a letter (numbers, prices and sizes are not product words or brand names)."""
    return any(c.isalpha() for c in word)


def match_key(text: str) -> str:
    """The form a word is compared in: case-folded, accents removed, letters without a decomposition spelled out
    ("Ærø" as "aero"), OCR confusions mapped, letters and digits only, of any script (a Chinese name keeps its
    characters: dropping them once made "Ærø" the key "r", which any letter R read in a photo matched)."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().translate(_FOLDS)
    return "".join(c for c in stripped.translate(_CONFUSIONS) if c.isalnum())


def product_key(brand: str, product_id: str) -> str:
    """The key of a catalog product in :class:`ProductTexts` (its brand and id: ids need not be unique across
    brands)."""
    return json.dumps([brand.casefold(), product_id], ensure_ascii=False)


def split_product_key(key: str) -> tuple[str, str]:
    """(case-folded brand, product id) of a :func:`product_key`."""
    brand, product_id = json.loads(key)
    return str(brand), str(product_id)


def _keys(texts: Iterable[str], min_length: int) -> set[str]:
    keys = (match_key(w) for text in texts for w in words(text) if has_letter(w))
    return {k for k in keys if len(k) >= min_length}


@dataclass(frozen=True)
class ProductWordMatch:
    """How well a photo's words match a product's reference texts: ``score`` is the share of the product's
    word weight (rare words weigh more) found in the photo, ``words`` the photo's words that matched."""

    product_id: str
    score: float
    words: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"product_id": self.product_id, "score": round(self.score, 4), "words": list(self.words)}


@dataclass(frozen=True)
class ProductTexts:
    """Each reference product's words with their weights: inverse document frequency over the catalog's
    products, so a word every product of a brand shares ("ARLA", "MJÖLK") weighs less than one only this
    product shows ("LAKTOSFRI"). Words shorter than ``min_length`` or without a letter are left out."""

    words: Mapping[str, frozenset[str]]
    weights: Mapping[str, float]
    min_length: int = 3

    def __post_init__(self) -> None:
        if not isinstance(self.min_length, int) or self.min_length < 1:
            raise ConfigError(f"min_length must be an integer >= 1, got {self.min_length!r}")
        missing = {w for ws in self.words.values() for w in ws} - set(self.weights)
        if missing:
            raise ResultError(f"words without a weight: {sorted(missing)[:5]}")

    @classmethod
    def build(cls, texts: Mapping[str, Iterable[str]], min_length: int = 3) -> ProductTexts:
        """``texts``: product id -> the texts that describe it (name, brand names, lines read from its photos)."""
        per_product = {pid: frozenset(_keys(t, min_length)) for pid, t in texts.items()}
        df = Counter(w for ws in per_product.values() for w in ws)
        n = len(per_product)
        weights = {w: math.log((n + 1) / (c + 0.5)) for w, c in df.items()}
        return cls(per_product, weights, min_length)

    def match(self, texts: Sequence[PhotoText], top: int = 5,
              only: Iterable[str] | None = None) -> tuple[ProductWordMatch, ...]:
        """The products whose words the photos show best, best first (those with no word in common left out);
        ``only``: consider these products only."""
        shown = [(w, match_key(w)) for t in texts for box in t.boxes for w in words(box.text) if has_letter(w)]
        keys = {k for _, k in shown if len(k) >= self.min_length}
        out = []
        chosen = self.words.items() if only is None else ((p, self.words[p]) for p in only if p in self.words)
        for pid, product_words in chosen:
            common = product_words & keys
            total = math.fsum(self.weights[w] for w in product_words)
            if common and total > 0:
                read = tuple(dict.fromkeys(w for w, k in shown if k in common))
                out.append(ProductWordMatch(pid, math.fsum(self.weights[w] for w in common) / total, read))
        out.sort(key=lambda m: (-m.score, m.product_id))
        return tuple(out[:top])

    def single_out(self, texts: Sequence[PhotoText], among: Sequence[str],
                   ignore: Iterable[str] = ()) -> ProductWordMatch | None:
        """The one product of ``among`` (one brand's products) that the photos' words single out, or None.

        A product is singled out when the photos show, against every other product of ``among``, a word of its
        texts that the other's texts lack ("LAKTOSFRI" against the plain milk), also within one edit for words of
        :data:`NEAR_LENGTH` letters or more (:func:`_lacked`: a small official photo's reading drops or misreads a
        letter, "ORIGNAL" on one soy milk's carton and "ORIGINAL" on its sibling's); words shared with a sibling
        ("MJÖLK", "Mild", "Creamy") name none of them. When two products are singled out (each shows a word the
        other lacks: two packages in one photo, or a misread), none is. ``ignore``: match keys never counted
        (the brand's own names, which every product of the brand shows)."""
        shown = [(w, match_key(w)) for t in texts for box in t.boxes for w in words(box.text) if has_letter(w)]
        skip = set(ignore)
        keys = {k for _, k in shown if len(k) >= self.min_length and k not in skip}
        known = [p for p in dict.fromkeys(among) if p in self.words]
        singled = []
        for pid in known:
            common = self.words[pid] & keys
            if common and all(_lacked(common, self.words[other]) for other in known if other != pid):
                singled.append((pid, common))
        if len(singled) != 1:
            return None
        pid, common = singled[0]
        total = math.fsum(self.weights[w] for w in self.words[pid])
        score = math.fsum(self.weights[w] for w in common) / total if total > 0 else 0.0
        return ProductWordMatch(pid, score, tuple(dict.fromkeys(w for w, k in shown if k in common)))

    def to_dict(self) -> dict[str, Any]:
        return {"min_length": self.min_length, "words": {pid: sorted(ws) for pid, ws in sorted(self.words.items())},
                "weights": dict(sorted(self.weights.items()))}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ProductTexts:
        return cls({str(pid): frozenset(ws) for pid, ws in d["words"].items()},
                   {str(w): float(v) for w, v in d["weights"].items()}, int(d.get("min_length", 3)))


#: words this long or longer that another product's texts hold within one edit are not lacked by it
NEAR_LENGTH = 5


def _lacked(common: set[str] | frozenset[str], other: frozenset[str]) -> set[str]:
    """The words of ``common`` that ``other`` lacks: not in it, and, for a word of :data:`NEAR_LENGTH` letters or
    more, none of its words of that length within one edit (a letter dropped, added or misread)."""
    return {w for w in common if w not in other and not (
        len(w) >= NEAR_LENGTH and any(len(o) >= NEAR_LENGTH and _one_edit(w, o) for o in other))}


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by at most one inserted, deleted or replaced character."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) <= 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    return short[i:] == long[i + 1:]


@dataclass(frozen=True)
class ReferenceTexts:
    """What the index knows about text: the text read from each reference photo (by its image key, e.g. the
    path in references.csv) and the products' words."""

    photos: Mapping[str, PhotoText]
    products: ProductTexts

    @classmethod
    def build(cls, photos: Mapping[str, PhotoText], product_of: Mapping[str, str],
              descriptions: Mapping[str, Sequence[str]], min_length: int = 3) -> ReferenceTexts:
        """``photos``: image key -> text read from it; ``product_of``: image key -> product id;
        ``descriptions``: product id -> its name and its brand's name and aliases."""
        texts: dict[str, list[str]] = {pid: list(d) for pid, d in descriptions.items()}
        for key, photo in photos.items():
            texts.setdefault(product_of[key], []).extend(photo.texts)
        return cls(dict(photos), ProductTexts.build(texts, min_length))

    @property
    def unreadable(self) -> dict[str, str]:
        """Reference photos whose text could not be read, with the reason."""
        return {k: p.unavailable for k, p in self.photos.items() if p.unavailable}

    def save(self, folder: str | Path) -> Path:
        """Write ``texts.json`` into the index folder atomically (a crash leaves the previous file)."""
        path = Path(folder) / TEXTS_FILE
        data = {"format": _FORMAT, "photos": {k: p.to_dict() for k, p in sorted(self.photos.items())},
                "products": self.products.to_dict()}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".texts-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, separators=(",", ":"))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, folder: str | Path) -> ReferenceTexts | None:
        """The stored reference texts, or None when the index has none (built without text)."""
        path = Path(folder) / TEXTS_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != _FORMAT:
                raise ResultError(f"format {data.get('format')!r}, expected {_FORMAT}")
            photos = {str(k): PhotoText.from_dict(v) for k, v in data["photos"].items()}
            return cls(photos, ProductTexts.from_dict(data["products"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"{path}: unreadable reference texts: {exc}") from exc
