"""Every setting that changes a verdict, in one frozen object with documented defaults, read from and written to
JSON (``knockoff policy show`` prints the effective one, ``knockoff policy write FILE`` the defaults)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from knockoff.catalog.images import DEFAULT_MAX_PIXELS
from knockoff.decide.photo_text import TextMatchSettings
from knockoff.decide.signals import RISK_CODES, TIERS
from knockoff.errors import PolicyError
from knockoff.match.text import TextReadSettings
from knockoff.match.verify import PackagingSettings, VerifierSettings

__all__ = [
    "DEFAULT_ENGINE_THRESHOLDS", "DEFAULT_REPLICA_TERMS", "DEFAULT_WEIGHTS", "EngineThresholds", "ImageSettings",
    "PackagingSettings", "Policy", "RiskSettings", "ShortlistSettings", "TextMatchSettings", "TextReadSettings",
    "TextSettings", "VerifierSettings",
]

DEFAULT_REPLICA_TERMS: tuple[str, ...] = (
    "replica", "1:1", "1to1", "aaa", "aaa+", "mirror quality", "mirror grade", "dupe", "super copy", "high copy",
    "fake", "knockoff", "knock-off", "knock off", "inspired by", "unbranded copy",
)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise PolicyError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class EngineThresholds:
    """Similarity thresholds of one embedding engine (similarities of different engines are not comparable).

    ``near_copy``: at or above it, the photo is taken as a near-copy of an official photo.
    ``match``: at or above it, the photo shows the same product (for clip) or a likely copy (for perceptual).
    ``candidate``: hits at or above it are geometrically verified, which can raise them to a near-copy.
    ``match_needs_verification``: a hit below ``near_copy`` counts only when the geometric check passes
    (when a verifier is on). Right for an engine that sees copies, not products (perceptual).
    """

    near_copy: float
    match: float
    candidate: float
    match_needs_verification: bool = False

    def __post_init__(self) -> None:
        _check(all(_is_number(v) for v in (self.near_copy, self.match, self.candidate)),
               f"thresholds must be numbers, got {self.candidate!r}, {self.match!r}, {self.near_copy!r}")
        _check(-1.0 <= self.candidate <= self.match <= self.near_copy <= 1.0,
               f"thresholds must satisfy -1 <= candidate <= match <= near_copy <= 1, got {self.candidate}, "
               f"{self.match}, {self.near_copy}")

    def match_floor(self, verifier_on: bool) -> float:
        """The similarity from which a candidate is a match without geometric proof."""
        return self.near_copy if self.match_needs_verification and verifier_on else self.match


# Per-engine defaults. perceptual: measured on the synthetic demo and copy suites (see benchmarks/);
# clip: typical ViT-B-32 image-image cosines (same photo edited > 0.9; same product, new photo ~0.8).
DEFAULT_ENGINE_THRESHOLDS: Mapping[str, EngineThresholds] = MappingProxyType({
    "perceptual": EngineThresholds(near_copy=0.90, match=0.80, candidate=0.55, match_needs_verification=True),
    "clip": EngineThresholds(near_copy=0.95, match=0.82, candidate=0.70),
})

DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"UNAUTHORIZED_SELLER": 0.6, "PRICE_IMPLAUSIBLE": 0.5, "BRAND_MISUSE": 0.4, "REPLICA_TERMS": 0.7,
     "BRAND_IN_PHOTO": 0.6, "MISSPELLED_BRAND_IN_PHOTO": 0.8}
)

DEFAULT_TIER_CONFIDENCE: Mapping[str, float] = MappingProxyType(
    {"near-copy": 1.0, "same-package": 0.8, "same-product": 0.8}
)


@dataclass(frozen=True)
class RiskSettings:
    """The risk formula's constants (:mod:`knockoff.decide.rule`).

    A matched listing's risk is ``tier_confidence[tier] * (floor + (1 - floor) * combined)``, where
    ``combined = 1 - prod(1 - weight)`` over its risk signals that hit (the weights are ``Policy.weights``).
    A ``review`` verdict's risk lies between the highest ``authorized`` risk and the lowest ``suspect`` risk the
    policy allows; a title-only review (no photo matched) counts with ``title_confidence``. A listing no photo
    of which matched but whose photo text names a catalog brand (``Policy.text``) counts as a match with
    ``text_confidence``.
    """

    tier_confidence: Mapping[str, float] = field(default_factory=lambda: DEFAULT_TIER_CONFIDENCE)
    title_confidence: float = 0.5
    floor: float = 0.1
    text_confidence: float = 0.8

    def __post_init__(self) -> None:
        given = dict(self.tier_confidence)
        for key in given:
            _known_key(key, TIERS, "risk.tier_confidence")
        confidence = {**DEFAULT_TIER_CONFIDENCE, **given}
        for tier, value in confidence.items():
            _check(_is_number(value) and 0.0 < value <= 1.0,
                   f"risk.tier_confidence of {tier} must be in (0, 1], got {value!r}")
        object.__setattr__(self, "tier_confidence", MappingProxyType({t: float(confidence[t]) for t in TIERS}))
        _check(_is_number(self.title_confidence) and 0.0 <= self.title_confidence <= 1.0,
               f"risk.title_confidence must be in [0, 1], got {self.title_confidence!r}")
        _check(_is_number(self.floor) and 0.0 <= self.floor < 1.0, f"risk.floor must be in [0, 1), got {self.floor!r}")
        _check(_is_number(self.text_confidence) and 0.0 < self.text_confidence <= 1.0,
               f"risk.text_confidence must be in (0, 1], got {self.text_confidence!r}")


@dataclass(frozen=True)
class ShortlistSettings:
    """The keypoint shortlist (:class:`knockoff.match.keypoints.KeypointShortlist`), used with a verifier.

    ``size``: this many more references, those that most of the listing photo's keypoints vote for, are
    verified besides the global top ``Policy.verify_top``: a rotated, warped or collaged copy that the global
    descriptor ranks low is still checked. ``"auto"``: 3 for the perceptual engine, 0 (off) for engines that
    see content (clip), where the vote costs more than it finds. The shortlist has no size cap: it is built
    with the index (``knockoff index build``, stored in the index folder) and loaded with it.
    The others are the shortlist's own parameters (descriptors per reference and per query, ratio test,
    neighbours searched, votes needed) and its index, chosen by size: exact search up to ``flat_limit``
    descriptors, IVF over the exact uint8 descriptors up to ``compress_above``, IVF with product quantization
    (``pq_bytes`` bytes a descriptor, 1 to 128) above it; ``nprobe`` lists searched. ``per_reference``,
    ``flat_limit``, ``compress_above`` and ``pq_bytes`` shape the stored shortlist (:meth:`build_params`):
    a policy with other values than the index was built with gets a shortlist built in memory in every process
    (logged; ``knockoff index build --policy`` stores one with them).

    ``stop_at_copy``: candidates are verified most similar first and verification stops at the first proven
    copy; the vote runs only when no global candidate is proven a copy (the vote is most of a check's cost).
    A listing that shows two official photos can then be matched to the more similar one rather than the one
    with more matching keypoints; either is a proven copy. Issue 15 (benchmarks/bench_scale.py ``--check``):
    with ``stop_at_copy``, ``query_features`` 400 (was 1,000) and ``flat_limit`` 65,536 (was 400,000: an exact
    vote over 300,000 descriptors took seconds a listing photo), the full check at 10^3 reference photos ran
    19x faster than main's in the same run (4.8 against 0.25 listings/s on 2 busy cores), with the same copies
    found (226 of 236 against the sources alone, for both); the old values stay reachable here.
    """

    size: int | str = "auto"
    per_reference: int = 500
    query_features: int = 400
    ratio: float = 0.85
    neighbours: int = 8
    flat_limit: int = 65_536
    min_votes: int = 4
    compress_above: int = 2_500_000
    pq_bytes: int = 32
    nprobe: int = 16
    stop_at_copy: bool = True

    def __post_init__(self) -> None:
        _check(self.size == "auto" or (_is_int(self.size) and self.size >= 0),  # type: ignore[operator]
               f"shortlist.size must be 'auto' or an integer >= 0, got {self.size!r}")
        for name in ("per_reference", "query_features", "neighbours", "flat_limit", "min_votes",
                     "compress_above", "nprobe"):
            value = getattr(self, name)
            _check(_is_int(value) and value >= 1, f"shortlist.{name} must be an integer >= 1, got {value!r}")
        _check(_is_number(self.ratio) and 0.0 < self.ratio <= 1.0,
               f"shortlist.ratio must be in (0, 1], got {self.ratio!r}")
        _check(_is_int(self.pq_bytes) and 1 <= self.pq_bytes <= 128,
               f"shortlist.pq_bytes must be an integer from 1 to 128, got {self.pq_bytes!r}")
        _check(isinstance(self.stop_at_copy, bool), f"shortlist.stop_at_copy must be true or false, "
                                                    f"got {self.stop_at_copy!r}")

    def build_params(self) -> Any:
        """The settings the stored shortlist is built with (a ``knockoff.match.keypoints.ShortlistParams``)."""
        from knockoff.match.keypoints import ShortlistParams

        return ShortlistParams(self.per_reference, self.flat_limit, self.compress_above, self.pq_bytes)

    def size_for(self, engine_kind: str) -> int:
        """The shortlist size for an engine (``"auto"`` resolved)."""
        if self.size == "auto":
            return 3 if engine_kind == "perceptual" else 0
        return int(self.size)


@dataclass(frozen=True)
class ImageSettings:
    """Listing photos: scaled down to ``max_side`` after decoding (enough for every engine and the geometric
    check; it bounds a batch's memory); a photo over ``max_pixels`` (None: no limit) is refused, not decoded."""

    max_side: int = 1024
    max_pixels: int | None = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        _check(_is_int(self.max_side) and self.max_side >= 32,
               f"images.max_side must be an integer >= 32, got {self.max_side!r}")
        _check(self.max_pixels is None or (_is_int(self.max_pixels) and self.max_pixels >= 1),
               f"images.max_pixels must be null or an integer >= 1, got {self.max_pixels!r}")


@dataclass(frozen=True)
class TextSettings:
    """Text in the listing's photos (on by default; ``enabled`` false turns it off: a check with text on costs
    about 1.9-2.6x one without it, see README "Text in photos").

    When on, the text of every listing photo is read (``read``: :class:`knockoff.match.text.TextReadSettings`)
    and matched to the catalog's brands (``match``: :class:`knockoff.decide.photo_text.TextMatchSettings`) and,
    for an index built with text, to the reference photos' words. It adds the signals ``BRAND_IN_PHOTO`` and
    ``MISSPELLED_BRAND_IN_PHOTO``, replica terms read in the photo to ``REPLICA_TERMS``, and a listing no photo
    of which matched but whose photo names a catalog brand is decided as a match of tier ``text``.
    """

    enabled: bool = True
    read: TextReadSettings = field(default_factory=TextReadSettings)
    match: TextMatchSettings = field(default_factory=TextMatchSettings)

    def __post_init__(self) -> None:
        _check(isinstance(self.enabled, bool), f"text.enabled must be true or false, got {self.enabled!r}")
        for name, kind in _NESTED[TextSettings].items():
            _check(isinstance(getattr(self, name), kind), f"text.{name} must be a {kind.__name__}")


@dataclass(frozen=True)
class Policy:
    """Everything the detector decides with. Frozen; change it with ``dataclasses.replace``.

    - ``engine_thresholds``: per embedder kind, see :class:`EngineThresholds` (kinds left out keep the defaults).
    - ``top_k``: reference images retrieved per listing photo.
    - ``verify_top``: how many best candidates are geometrically verified (0 turns verification off).
    - ``price_ratio``: a price below this fraction of the reference price is implausible (default 0.5).
    - ``currency_rates``: value of one unit of each currency in a common unit of your choice, e.g.
      ``{"USD": 1.0, "EUR": 1.08}``; prices in other currencies than the reference's are compared only through
      these rates, and an unknown currency makes the price signal unknown.
    - ``replica_terms``: words and phrases that advertise a copy.
    - ``weights``: how much each risk signal (``UNAUTHORIZED_SELLER``, ``PRICE_IMPLAUSIBLE``, ``BRAND_MISUSE``,
      ``REPLICA_TERMS``) adds to the risk score (each in [0, 1]).
    - ``min_risk_to_flag``: a matched listing with a risk signal is ``suspect`` from this risk on, ``review``
      below it.
    - ``packaging_match`` (on by default since issue 14's eighth round; false turns it off): with geometric
      verification on, a listing photo whose keypoints match an official photo's printed packaging under looser
      checks than a copy's (``packaging``), with a clear margin over every other product, is a ``same-package``
      match (a seller's own new photo of the package) even for an engine that sees only copies (perceptual).
      Measured on grocerystore: ``benchmarks/results/grocery_packaging.md``, ``grocery_fusion.default_packaging.md``.
      It was off because it names a product among the catalog's only: a seller's store photo of a product missing
      from the catalog was named as a sibling that shares its package design (``bench_sibling_verdicts.py
      --packaging --store 3``: 43 of 93, right brand, wrong product). A winning package now names its product only
      when the listing reproduces enough of its official photo's small print (``packaging.min_product_detail``,
      :func:`knockoff.match.siblings.product_check`), else the brand only (``review``): 3 of those 93 name a
      product (``sibling_verdicts_packaging_store3.product_detail.md``). Its cost: ``bench_packaging_cost.py``.
      Such a photo looks like the sibling's official photo as a whole: a packaging match that is not a proven
      copy, with a global similarity at the engine's ``match`` or more on an engine that sees copies, names the
      brand only (``review``): 0 of those 31 photos name a product (22 did, ``suspect``), while no store photo
      of the right product comes that close (``bench_packaging_lookalike.py``: at most 0.71 val, 0.73 train).
    - ``risk``: the risk formula (:class:`RiskSettings`); ``verifier``: the copy check
      (:class:`knockoff.match.verify.VerifierSettings`); ``packaging``: the same-packaging check
      (:class:`knockoff.match.verify.PackagingSettings`); ``shortlist``: the keypoint shortlist
      (:class:`ShortlistSettings`); ``images``: listing photo limits (:class:`ImageSettings`); ``text``: text
      in photos, on by default (:class:`TextSettings`).
    """

    engine_thresholds: Mapping[str, EngineThresholds] = field(default_factory=lambda: DEFAULT_ENGINE_THRESHOLDS)
    top_k: int = 10
    verify_top: int = 3
    price_ratio: float = 0.5
    currency_rates: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    replica_terms: tuple[str, ...] = DEFAULT_REPLICA_TERMS
    weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_WEIGHTS)
    min_risk_to_flag: float = 0.0
    packaging_match: bool = True
    risk: RiskSettings = field(default_factory=RiskSettings)
    verifier: VerifierSettings = field(default_factory=VerifierSettings)
    packaging: PackagingSettings = field(default_factory=PackagingSettings)
    shortlist: ShortlistSettings = field(default_factory=ShortlistSettings)
    images: ImageSettings = field(default_factory=ImageSettings)
    text: TextSettings = field(default_factory=TextSettings)

    def __post_init__(self) -> None:
        given = {**DEFAULT_ENGINE_THRESHOLDS, **dict(self.engine_thresholds)}  # engines left out: the defaults
        thresholds = {str(kind): _thresholds(str(kind), value) for kind, value in given.items()}
        object.__setattr__(self, "engine_thresholds", MappingProxyType(thresholds))
        rates = {str(k).upper(): v for k, v in dict(self.currency_rates).items()}
        for code, rate in rates.items():
            _check(_is_number(rate) and rate > 0, f"currency rate of {code} must be a number > 0, got {rate!r}")
        object.__setattr__(self, "currency_rates", MappingProxyType({k: float(v) for k, v in rates.items()}))
        for code in dict(self.weights):
            _known_key(code, RISK_CODES, "weights")
        weights = {**DEFAULT_WEIGHTS, **dict(self.weights)}
        for code, weight in weights.items():
            _check(_is_number(weight) and 0.0 <= weight <= 1.0, f"weight of {code} must be in [0, 1], got {weight!r}")
        object.__setattr__(self, "weights", MappingProxyType({k: float(v) for k, v in weights.items()}))
        _check(not isinstance(self.replica_terms, str), "replica_terms must be a list of words, not one string")
        object.__setattr__(self, "replica_terms", tuple(str(t).strip().lower() for t in self.replica_terms
                                                        if str(t).strip()))
        self._check_scalars()

    def _check_scalars(self) -> None:
        _check(_is_int(self.top_k) and self.top_k >= 1, f"top_k must be an integer >= 1, got {self.top_k!r}")
        _check(_is_int(self.verify_top) and self.verify_top >= 0,
               f"verify_top must be an integer >= 0, got {self.verify_top!r}")
        _check(_is_number(self.price_ratio) and 0.0 < self.price_ratio < 1.0,
               f"price_ratio must be in (0, 1), got {self.price_ratio!r}")
        _check(_is_number(self.min_risk_to_flag) and 0.0 <= self.min_risk_to_flag <= 1.0,
               f"min_risk_to_flag must be in [0, 1], got {self.min_risk_to_flag!r}")
        _check(isinstance(self.packaging_match, bool), f"packaging_match must be true or false, "
                                                       f"got {self.packaging_match!r}")
        for name, kind in _NESTED[Policy].items():
            _check(isinstance(getattr(self, name), kind), f"{name} must be a {kind.__name__}")

    def thresholds_for(self, embedder_kind: str) -> EngineThresholds:
        """The thresholds of an engine; an engine without its own falls back to clip's."""
        found = self.engine_thresholds.get(embedder_kind) or self.engine_thresholds.get("clip")
        return found or DEFAULT_ENGINE_THRESHOLDS["clip"]

    def with_thresholds(self, embedder_kind: str, thresholds: EngineThresholds) -> Policy:
        """A copy with one engine's thresholds replaced."""
        return replace(self, engine_thresholds={**self.engine_thresholds, embedder_kind: thresholds})

    def with_extra_replica_terms(self, *terms: str) -> Policy:
        """A copy with more replica terms."""
        return replace(self, replica_terms=(*self.replica_terms, *terms))

    # -- JSON -------------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Every setting as plain JSON values (nested objects for the nested settings)."""
        return _asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """The inverse of :meth:`to_dict`; keys left out keep their defaults (in nested objects too), an
        unknown key is a :class:`PolicyError` naming it and the closest known name."""
        return _build(cls, data, "")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Policy:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"line {exc.lineno}: not valid JSON ({exc.msg})") from exc
        _check(isinstance(data, dict), "a policy must be a JSON object")
        return cls.from_dict(data)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Read a policy JSON file (keys left out keep their defaults); errors name the file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"{path}: cannot read policy file ({exc.strerror or exc})") from exc
        try:
            return cls.from_json(text)
        except PolicyError as exc:
            raise PolicyError(f"{path}: {exc}") from exc


_NESTED: dict[type, dict[str, type]] = {
    Policy: {"risk": RiskSettings, "verifier": VerifierSettings, "packaging": PackagingSettings,
             "shortlist": ShortlistSettings, "images": ImageSettings, "text": TextSettings},
    TextSettings: {"read": TextReadSettings, "match": TextMatchSettings},
}
"""The nested settings groups of each settings class that has some (read and written as JSON objects)."""


def _thresholds(kind: str, value: Any) -> EngineThresholds:
    """An engine's thresholds from an object or a JSON object (keys left out: that engine's defaults)."""
    if isinstance(value, EngineThresholds):
        return value
    _check(isinstance(value, Mapping), f"engine_thresholds.{kind} must be a JSON object, got {value!r}")
    default = DEFAULT_ENGINE_THRESHOLDS.get(kind)
    return _build(EngineThresholds, {**(_asdict(default) if default else {}), **value}, f"engine_thresholds.{kind}")


REMOVED_KEYS: Mapping[str, str] = MappingProxyType({
    "shortlist.max_references": "the keypoint shortlist has no size cap since it is stored with the index "
                                "(issue 15); delete the key",
})
"""Keys older policy files may hold, and why they are gone (a policy with one is refused, saying so)."""


def _known_key(key: Any, known: Any, where: str) -> None:
    """A PolicyError naming an unknown key and the closest known one (or why a removed key is gone)."""
    known = list(known)
    if key in known:
        return
    full = f"{where + '.' if where else ''}{key}"
    if full in REMOVED_KEYS:
        raise PolicyError(f"key '{full}' is no longer read: {REMOVED_KEYS[full]}")
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(known)}"
    raise PolicyError(f"unknown key '{full}'{hint}")


def _asdict(value: Any) -> Any:
    """Plain JSON values of a settings object (dataclasses, mappings, tuples), recursively."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if is_dataclass(value):
        return {f.name: _asdict(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _asdict(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_asdict(v) for v in value]
    raise PolicyError(f"cannot write {type(value).__name__} to a policy")


def _build(cls: type, data: Any, where: str) -> Any:
    """A settings dataclass from a JSON object: checks every key, nests, turns lists into tuples."""
    _check(isinstance(data, Mapping), f"{where or 'policy'} must be a JSON object, got {data!r}")
    by_name = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        _known_key(key, by_name, where)
        nested = _NESTED.get(cls, {}).get(key)
        if nested is not None:
            value = _build(nested, value, f"{where}.{key}" if where else key)
        elif isinstance(value, list) and isinstance(by_name[key].default, tuple):
            value = tuple(value)
        values[key] = value
    if cls is Policy and "engine_thresholds" in values:
        _check(isinstance(values["engine_thresholds"], Mapping), "engine_thresholds must be a JSON object")
    missing = [f.name for f in by_name.values()
               if f.name not in values and f.default is MISSING and f.default_factory is MISSING]
    _check(not missing, f"{where or 'policy'}: missing {', '.join(missing)}")
    try:
        return cls(**values)
    except PolicyError:
        raise
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{where or 'policy'}: {exc}") from exc
