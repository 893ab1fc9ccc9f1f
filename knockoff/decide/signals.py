"""The signals: small pure functions, each with a stable code, that explain a verdict.

Each returns a :class:`Signal` whose ``state`` is ``"hit"`` (the risk is present), ``"clear"`` (checked and
absent) or ``"unknown"`` (cannot be told from the data given), with a plain message a reviewer can check.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from knockoff.catalog.readers import Brand
from knockoff.errors import ResultError

VISUAL_MATCH = "VISUAL_MATCH"
UNAUTHORIZED_SELLER = "UNAUTHORIZED_SELLER"
PRICE_IMPLAUSIBLE = "PRICE_IMPLAUSIBLE"
BRAND_MISUSE = "BRAND_MISUSE"
REPLICA_TERMS = "REPLICA_TERMS"
TITLE_NAMES_BRAND = "TITLE_NAMES_BRAND"
BRAND_IN_PHOTO = "BRAND_IN_PHOTO"
MISSPELLED_BRAND_IN_PHOTO = "MISSPELLED_BRAND_IN_PHOTO"
TEXT_RISK_CODES = (BRAND_IN_PHOTO, MISSPELLED_BRAND_IN_PHOTO)
"""Risk signals from the text read in the listing's photos (:mod:`knockoff.decide.photo_text`); computed, and
counted by the decision rule, only when ``Policy.text.enabled``."""
RISK_CODES = (UNAUTHORIZED_SELLER, PRICE_IMPLAUSIBLE, BRAND_MISUSE, REPLICA_TERMS, *TEXT_RISK_CODES)
"""The signals whose hits make a matched listing a suspect (each has a weight in the policy)."""
TEXT_TIER = "text"
"""The tier of a listing no photo of which matched, but whose photo text names a catalog brand (text reading on):
it goes through the decision rule like a match, with ``Policy.risk.text_confidence``."""

TIERS = ("near-copy", "same-package", "same-product")
"""Tiers of a visual match, strongest first: a copy of an official photo (proven by keypoints and pixels, or a
global similarity at the engine's near-copy threshold), a new photo of the same printed package (keypoints,
``Policy.packaging_match``), the same product (global similarity at the engine's match threshold)."""

ANY_SELLER = "*"
"""In a brand's ``authorized_sellers`` (``*`` in brands.csv): the brand keeps no seller list, any seller may sell
its products, so the seller check is clear for every seller."""

STATES = ("hit", "clear", "unknown")
State = Literal["hit", "clear", "unknown"]


@dataclass(frozen=True)
class Signal:
    """The outcome of one check."""

    code: str
    state: State
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ResultError(f"signal {self.code}: state must be one of {STATES}, got {self.state!r}")

    @property
    def hit(self) -> bool:
        return self.state == "hit"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "state": self.state, "message": self.message, "details": dict(self.details)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signal:
        """The inverse of :meth:`to_dict`."""
        return cls(str(data["code"]), data["state"], str(data["message"]), dict(data.get("details") or {}))


def _fmt_price(value: float, currency: str | None) -> str:
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{text} {currency}" if currency else text


# -- visual match -----------------------------------------------------------------------------------------


def tier_index(similarity: Any, verified: Any, same_package: Any, *, near_copy: float, match: float,
               refuted: Any = False, unconfirmed: Any = False, too_plain: Any = False) -> Any:
    """The match tier as an index into :data:`TIERS` (``len(TIERS)``: no match), for scalars or numpy arrays.

    A copy proven by local features is a ``near-copy``; so is a global similarity at ``near_copy`` when local
    features were not tried. When they were, and refuted it (``refuted``: the same printed design, but the
    aligned pixels show another photo, e.g. a sibling product's official photo or a seller's own photo) or could
    not confirm it (``unconfirmed``), one number does not make a copy. Else a same-packaging match is
    ``same-package``; else a similarity at ``match`` is ``same-product``, except a refuted one when ``match`` is
    the near-copy threshold (an engine that sees copies, not products: a refuted copy is no match at all).
    ``too_plain``: the listing photo has fewer keypoints than a copy's proof needs (a near-uniform photo, e.g.
    sky), so local features could not even be compared; on an engine that sees copies its global similarity
    alone is then no match at all (:func:`visual_match` says it was not checked).
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    refuted = np.asarray(refuted, dtype=bool)
    plain = np.asarray(too_plain, dtype=bool)
    unproven = refuted | plain | np.asarray(unconfirmed, dtype=bool)
    near = np.asarray(verified, dtype=bool) | ((similarity >= near_copy) & ~unproven)
    product = (similarity >= match) & ~((refuted | plain) & (match >= near_copy))
    conditions = [near, np.asarray(same_package, dtype=bool), product]
    return np.select(conditions, [0, 1, 2], len(TIERS))


def guessed_copy(tier: Any, unconfirmed: Any, *, near_copy: float, match: float) -> Any:
    """Whether a match is a guess a person must check: an engine that sees copies, not products (``match`` at
    ``near_copy``), matched the photo at tier ``same-product`` by its global similarity alone, and local features
    could not confirm a copy (too few of its keypoints agree). A photo with too little detail to compare at all
    (a plain photo of sky, whose global descriptor was once 0.93 close to a carton's) is no match
    (``too_plain`` in :func:`tier_index`), so no guess either. Such a match is ``review``, never ``suspect`` (:func:`knockoff.decide.rule.decide`).
    ``tier``: a tier name, or indices into :data:`TIERS` (numpy arrays work)."""
    tier = np.asarray(tier)
    same_product = tier == (TIERS.index("same-product") if tier.dtype.kind in "iu" else "same-product")
    return same_product & np.asarray(unconfirmed, dtype=bool) & bool(match >= near_copy)


def match_tier(similarity: float, *, verified: bool, same_package: bool, near_copy: float, match: float,
               refuted: bool = False, unconfirmed: bool = False, too_plain: bool = False) -> str | None:
    """The tier (one of :data:`TIERS`) of a best candidate, or None when it is not a match."""
    number = int(tier_index(similarity, verified, same_package, near_copy=near_copy, match=match, refuted=refuted,
                            unconfirmed=unconfirmed, too_plain=too_plain))
    return TIERS[number] if number < len(TIERS) else None


def visual_match(
    similarity: float,
    reference_label: str,
    *,
    near_copy: float,
    match: float,
    verified_copy: str | None = None,
    same_package: str | None = None,
    refuted: str | None = None,
    unconfirmed: str | None = None,
    too_plain: str | None = None,
) -> Signal:
    """Tier the best reference (:func:`match_tier`) and say why, each number under its own name.

    ``verified_copy`` is a geometric verification's description: local features and the aligned pixels
    proved the photo is a copy, whatever the global similarity. ``same_package`` is a same-packaging match's
    description (``Policy.packaging_match``). ``refuted`` says why local features showed the same design but
    not a copy; ``unconfirmed`` why they could not confirm one; ``too_plain`` why the listing photo has too
    little detail to compare at all (see :func:`tier_index`): when that leaves no match although the global
    similarity reached the match threshold, the signal is ``unknown`` (not checked), never a silent ``clear``.
    The details keep this evidence (``verified``, ``same_package``, ``refuted``, ``unconfirmed``, ``too_plain``,
    the unrounded ``similarity``), from which the tier can be recomputed under other thresholds (calibration).
    """
    tier = match_tier(similarity, verified=bool(verified_copy), same_package=bool(same_package),
                      near_copy=near_copy, match=match, refuted=bool(refuted), unconfirmed=bool(unconfirmed),
                      too_plain=bool(too_plain))
    details = {"tier": tier, "similarity": similarity, "verified": bool(verified_copy),
               "same_package": bool(same_package), "refuted": bool(refuted), "unconfirmed": bool(unconfirmed),
               "too_plain": bool(too_plain)}
    sim = f"global similarity {similarity:.2f}"
    if tier is None and too_plain and similarity >= match:
        return Signal(VISUAL_MATCH, "unknown",
                      f"not checked: the photo has too little detail to compare ({too_plain}); its {sim} to "
                      f"{reference_label} alone names no brand", details)
    if tier is None:
        why = f"; not a copy: {refuted}" if refuted else ""
        return Signal(VISUAL_MATCH, "clear",
                      f"no reference photo is close enough (nearest {reference_label}, {sim}{why})", details)
    if verified_copy:
        message = f"photo is a copy of the official photo {reference_label}: {verified_copy} ({sim})"
    elif tier == "near-copy":
        message = (f"photo is nearly identical to {reference_label} by the global descriptor alone ({sim}, "
                   f"near-copy threshold {near_copy:.2f}); not checked by local features")
    elif tier == "same-package":
        named = "" if reference_label in (same_package or "") else f" as {reference_label}"  # named once
        message = f"photo shows the same packaging{named}: {same_package} ({sim})"
    else:
        why = (f"; it is not a copy of it: {refuted}" if refuted else
               f"; local features could not confirm a copy: {unconfirmed}" if unconfirmed else "")
        message = f"photo looks like {reference_label} ({sim}){why}"
    return Signal(VISUAL_MATCH, "hit", message, details)


# -- seller -----------------------------------------------------------------------------------------------


def seller_authorized(brand: Brand, seller: str | None) -> bool | None:
    """True when the seller is on the brand's list (or the brand lets anyone sell, :data:`ANY_SELLER`), False
    when the brand lists its sellers and this one is not among them, None when it cannot be told."""
    if ANY_SELLER in brand.authorized_sellers:
        return True
    return brand.is_authorized(seller.strip() if seller else seller)


def unauthorized_seller(seller: str | None, brand: Brand) -> Signal:
    """Hit when the brand lists its sellers and this seller is not among them; clear when it is among them or
    the brand lets anyone sell (:data:`ANY_SELLER`); unknown when the brand lists no sellers or none is given."""
    if ANY_SELLER in brand.authorized_sellers:
        return Signal(UNAUTHORIZED_SELLER, "clear", f"{brand.name} lets any seller sell its products")
    if not brand.authorized_sellers:
        return Signal(UNAUTHORIZED_SELLER, "unknown", f"{brand.name} does not list its authorized sellers")
    if not seller or not seller.strip():
        return Signal(UNAUTHORIZED_SELLER, "unknown", "the listing names no seller")
    if seller_authorized(brand, seller):
        return Signal(UNAUTHORIZED_SELLER, "clear", f"seller {seller} is an authorized {brand.name} seller")
    return Signal(
        UNAUTHORIZED_SELLER, "hit", f"seller {seller} is not an authorized {brand.name} seller",
        {"seller": seller, "authorized_sellers": list(brand.authorized_sellers)},
    )


# -- price ------------------------------------------------------------------------------------------------


def convert_price(
    amount: float, currency: str | None, to_currency: str | None, rates: Mapping[str, float]
) -> float | None:
    """Convert with the user's rates only; None when it can't be done (unknown currency)."""
    if currency == to_currency or (currency is None and to_currency is None):
        return amount
    if currency is None or to_currency is None or currency not in rates or to_currency not in rates:
        return None
    return amount * rates[currency] / rates[to_currency]


def price_implausible(
    price: float | None,
    currency: str | None,
    reference_price: float | None,
    reference_currency: str | None,
    *,
    ratio: float = 0.5,
    rates: Mapping[str, float] | None = None,
) -> Signal:
    """Hit when the price is below ``ratio`` of the reference price (after conversion with the given rates)."""
    if price is None:
        return Signal(PRICE_IMPLAUSIBLE, "unknown", "the listing gives no price")
    if reference_price is None or reference_price <= 0:
        return Signal(PRICE_IMPLAUSIBLE, "unknown", "the reference product has no price")
    converted = convert_price(price, currency, reference_currency, rates or {})
    if converted is None:
        return Signal(
            PRICE_IMPLAUSIBLE, "unknown",
            f"price {_fmt_price(price, currency)} cannot be compared with {_fmt_price(reference_price, reference_currency)}"
            " (no exchange rate given)",
        )
    share = converted / reference_price
    shown = _fmt_price(price, currency)
    if currency != reference_currency:
        shown += f" (= {_fmt_price(converted, reference_currency)})"
    details = {"price": price, "currency": currency, "reference_price": reference_price,
               "reference_currency": reference_currency, "share": share}
    text = f"price {shown} is {share:.0%} of the reference price {_fmt_price(reference_price, reference_currency)}"
    return Signal(PRICE_IMPLAUSIBLE, "hit" if share < ratio else "clear", text, details)


# -- title ------------------------------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """Lower case, accents removed, punctuation other than ``:`` and ``+`` turned into spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^\w:+]+", " ", stripped).split())


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap neighbours), capped at ``limit``."""
    if abs(len(a) - len(b)) >= limit:
        return limit
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return min(prev[-1], limit)


def _allowed_typos(name: str) -> int:
    return 0 if len(name) < 4 else 1 if len(name) < 8 else 2


#: characters around a title word that do not belong to it: "(LG)", "X," or "'X'" still write the name
_WORD_EDGES = "\"'`“”‘’«»()[]{}<>,.;:!?"
_POSSESSIVE = ("'s", "’s")


def is_short_name(name: str) -> bool:
    """A brand name (or alias) of at most 2 letters or digits, which everyday titles write by chance ("2 x")."""
    return len(normalize_text(name).replace(" ", "")) <= 2


def _title_word(token: str) -> str:
    word = token.strip(_WORD_EDGES)
    for ending in _POSSESSIVE:
        if word.endswith(ending) and len(word) > len(ending):
            word = word[: -len(ending)]
    return word


def short_name_in_title(title: str, name: str) -> bool:
    """Whether the title names a brand of 1-2 characters: as separate words written in the catalog's case ("LG",
    "X"), not after a number ("2 x 500ml", "500 x 300 mm", "3 LG"), and a one-character name not before one either
    ("milk x 2"); a name glued to other characters ("x2", "3x", "X-ray") is another word. "LG 55 inch" names LG.
    """
    words = [_title_word(t) for t in title.split()]
    wanted = name.split()
    size = len(wanted)
    for i in range(len(words) - size + 1):
        if words[i : i + size] != wanted:
            continue
        after_number = i > 0 and words[i - 1][-1:].isdigit()
        before_number = i + size < len(words) and words[i + size][:1].isdigit()
        if not after_number and not (before_number and len(normalize_text(name).replace(" ", "")) == 1):
            return True
    return False


def find_brand_mention(title: str, brand: Brand) -> tuple[str, str] | None:
    """How the title names the brand: ``("exact", word)``, ``("misspelled", word)`` or None.

    Names and aliases are matched as whole words (multi-word names too, with or without spaces); a
    near-misspelling is a title word sequence within 1 edit (names of 4-7 letters) or 2 (longer names). A name of
    one or two characters counts only as written in the catalog (:func:`short_name_in_title`): "2 x 500ml" does
    not name a brand "X".
    """
    words = normalize_text(title).split()
    if not words:
        return None
    written = [n for n in (brand.name, *brand.aliases) if normalize_text(n)]
    for name in written:
        if is_short_name(name) and short_name_in_title(title, name):
            return ("exact", name)
    names = [normalize_text(n) for n in written if not is_short_name(n)]
    spans: list[str] = []
    for size in (1, 2, 3):
        spans += [" ".join(words[i : i + size]) for i in range(len(words) - size + 1)]
    for name in names:
        squashed = name.replace(" ", "")
        for span in spans:
            if span == name or span.replace(" ", "") == squashed:
                return ("exact", span)
    best: tuple[int, str] | None = None
    for name in names:
        squashed = name.replace(" ", "")
        allowed = _allowed_typos(squashed)
        if allowed == 0:
            continue
        for span in spans:
            candidate = span.replace(" ", "")
            if abs(len(candidate) - len(squashed)) > allowed or candidate[:1] != squashed[:1] and allowed < 2:
                continue
            distance = edit_distance(candidate, squashed, allowed + 1)
            if 0 < distance <= allowed and (best is None or distance < best[0]):
                best = (distance, span)
    return ("misspelled", best[1]) if best else None


def brand_misuse(title: str, brand: Brand, *, seller_authorized: bool | None) -> Signal:
    """Hit when the title misspells the brand, uses its name without authorization, or hides the brand.

    "Hides" means the photo matched the brand's product but the title does not name it, which sellers do to
    slip past text filters; it counts only when the seller is not known to be authorized.
    """
    if not title or not title.strip():
        return Signal(BRAND_MISUSE, "unknown", "the listing has no title")
    mention = find_brand_mention(title, brand)
    if mention and mention[0] == "misspelled":
        return Signal(
            BRAND_MISUSE, "hit", f"title spells the brand {brand.name} as '{mention[1]}'",
            {"how": "misspelled", "word": mention[1]},
        )
    if mention:
        if seller_authorized is False:
            return Signal(
                BRAND_MISUSE, "hit", f"title uses the {brand.name} name, but the seller is not authorized",
                {"how": "unauthorized-name", "word": mention[1]},
            )
        return Signal(BRAND_MISUSE, "clear", f"title names {brand.name}", {"how": "named", "word": mention[1]})
    if seller_authorized is True:
        return Signal(BRAND_MISUSE, "clear", f"title does not name {brand.name}; the seller is authorized")
    return Signal(
        BRAND_MISUSE, "hit", f"the photo shows {brand.name}, but the title hides the brand",
        {"how": "hidden"},
    )


def replica_terms(title: str, terms: Iterable[str]) -> Signal:
    """Hit when the title uses words that advertise a copy ("replica", "1:1", "AAA", "dupe", ...)."""
    if not title or not title.strip():
        return Signal(REPLICA_TERMS, "unknown", "the listing has no title")
    text = f" {normalize_text(title)} "
    found = []
    for term in terms:
        needle = normalize_text(term)
        if needle and re.search(rf"(?<![\w:+]){re.escape(needle)}(?![\w:+])", text):
            found.append(term)
    if not found:
        return Signal(REPLICA_TERMS, "clear", "title uses no replica terms")
    quoted = ", ".join(f"'{t}'" for t in found)
    return Signal(REPLICA_TERMS, "hit", f"title advertises a copy: {quoted}", {"terms": found})


# -- a title that names a brand while no photo matched ------------------------------------------------------


def title_names_brand(title: str, brands: Iterable[Brand]) -> Signal:
    """Hit when the title names a catalog brand, an alias or a near-misspelling of one (whole words; an exact
    name wins over a misspelling, then the brand first by name); the brand's name is in ``details``."""
    if not title or not title.strip():
        return Signal(TITLE_NAMES_BRAND, "unknown", "the listing has no title")
    misspelled: tuple[Brand, str] | None = None
    for brand in sorted(brands, key=lambda b: b.key):
        mention = find_brand_mention(title, brand)
        if mention and mention[0] == "exact":
            return Signal(TITLE_NAMES_BRAND, "hit", f"title names the brand {brand.name} ('{mention[1]}')",
                          {"brand": brand.name, "how": "exact", "word": mention[1]})
        if mention and misspelled is None:
            misspelled = (brand, mention[1])
    if misspelled is not None:
        brand, word = misspelled
        return Signal(TITLE_NAMES_BRAND, "hit", f"title names the brand {brand.name}, misspelled as '{word}'",
                      {"brand": brand.name, "how": "misspelled", "word": word})
    return Signal(TITLE_NAMES_BRAND, "clear", "title names no catalog brand")


def price_implausible_for_brand(
    price: float | None,
    currency: str | None,
    brand: str,
    product_prices: Sequence[tuple[float, str | None]],
    *,
    ratio: float = 0.5,
    rates: Mapping[str, float] | None = None,
) -> Signal:
    """Hit when the price is below ``ratio`` of every comparable reference price of the brand's products (of
    its cheapest product): implausible for anything the brand sells. Unknown when nothing can be compared."""
    if price is None:
        return Signal(PRICE_IMPLAUSIBLE, "unknown", "the listing gives no price")
    shares = []  # (share of that reference price, reference price, its currency)
    for ref_price, ref_currency in product_prices:
        converted = convert_price(price, currency, ref_currency, rates or {})
        if converted is not None and ref_price > 0:
            shares.append((converted / ref_price, ref_price, ref_currency))
    if not shares:
        return Signal(PRICE_IMPLAUSIBLE, "unknown",
                      f"price {_fmt_price(price, currency)} cannot be compared with any {brand} reference price")
    share, ref_price, ref_currency = max(shares, key=lambda item: (item[0], item[1]))  # the cheapest product
    details = {"price": price, "currency": currency, "brand": brand, "reference_price": ref_price,
               "reference_currency": ref_currency, "share": share}
    text = (f"price {_fmt_price(price, currency)} is {share:.0%} of the cheapest {brand} reference price "
            f"{_fmt_price(ref_price, ref_currency)}")
    return Signal(PRICE_IMPLAUSIBLE, "hit" if share < ratio else "clear", text, details)
