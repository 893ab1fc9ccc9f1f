"""Thresholds and weights of the detector, in one frozen object with documented defaults."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from knockoff.errors import PolicyError

DEFAULT_REPLICA_TERMS: tuple[str, ...] = (
    "replica",
    "1:1",
    "1to1",
    "aaa",
    "aaa+",
    "mirror quality",
    "mirror grade",
    "dupe",
    "super copy",
    "high copy",
    "fake",
    "knockoff",
    "knock-off",
    "knock off",
    "inspired by",
    "unbranded copy",
)


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
        if not (-1.0 <= self.candidate <= self.match <= self.near_copy <= 1.0):
            raise PolicyError(
                f"thresholds must satisfy -1 <= candidate <= match <= near_copy <= 1, got {self.candidate}, "
                f"{self.match}, {self.near_copy}"
            )


# Per-engine defaults. perceptual: measured on the synthetic demo and copy suites (see benchmarks/);
# clip: typical ViT-B-32 image-image cosines (same photo edited > 0.9; same product, new photo ~0.8).
DEFAULT_ENGINE_THRESHOLDS: Mapping[str, EngineThresholds] = MappingProxyType(
    {
        "perceptual": EngineThresholds(near_copy=0.90, match=0.80, candidate=0.55, match_needs_verification=True),
        "clip": EngineThresholds(near_copy=0.95, match=0.82, candidate=0.70),
    }
)

DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "UNAUTHORIZED_SELLER": 0.6,
        "PRICE_IMPLAUSIBLE": 0.5,
        "BRAND_MISUSE": 0.4,
        "REPLICA_TERMS": 0.7,
    }
)


@dataclass(frozen=True)
class Policy:
    """Everything the detector decides with. Frozen; change it with :meth:`replace` (``dataclasses.replace``).

    - ``engine_thresholds``: per embedder kind, see :class:`EngineThresholds`.
    - ``top_k``: reference images retrieved per listing photo.
    - ``verify_top``: how many best candidates are geometrically verified (0 turns verification off).
    - ``price_ratio``: a price below this fraction of the reference price is implausible (default 0.5).
    - ``currency_rates``: value of one unit of each currency in a common unit of your choice, e.g.
      ``{"USD": 1.0, "EUR": 1.08}``; prices in other currencies than the reference's are compared only through
      these rates, and an unknown currency makes the price signal unknown.
    - ``replica_terms``: words and phrases that advertise a copy.
    - ``weights``: how much each risk signal adds to the risk score (each in [0, 1]).
    - ``min_risk_to_flag``: a listing is ``suspect`` when it has a visual match, at least one risk signal, and
      a risk at least this.
    - ``packaging_match`` (opt-in, default off): with geometric verification on, a listing photo whose
      keypoints match an official photo's printed packaging under looser checks than a copy's, with a clear
      margin over every other product (:class:`knockoff.match.verify.PackagingSettings`), is a ``same-product``
      match (a seller's own new photo of the same package) even for an engine that sees only copies
      (perceptual). Measured on grocerystore: ``benchmarks/results/grocery_packaging.md``.
    """

    engine_thresholds: Mapping[str, EngineThresholds] = field(default_factory=lambda: DEFAULT_ENGINE_THRESHOLDS)
    top_k: int = 10
    verify_top: int = 3
    price_ratio: float = 0.5
    currency_rates: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    replica_terms: tuple[str, ...] = DEFAULT_REPLICA_TERMS
    weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_WEIGHTS)
    min_risk_to_flag: float = 0.0
    packaging_match: bool = False

    def __post_init__(self) -> None:
        thresholds = {}
        for kind, value in dict(self.engine_thresholds).items():
            thresholds[kind] = value if isinstance(value, EngineThresholds) else EngineThresholds(**value)
        object.__setattr__(self, "engine_thresholds", MappingProxyType(thresholds))
        rates = {str(k).upper(): float(v) for k, v in dict(self.currency_rates).items()}
        for code, rate in rates.items():
            if not rate > 0:
                raise PolicyError(f"currency rate of {code} must be > 0, got {rate}")
        object.__setattr__(self, "currency_rates", MappingProxyType(rates))
        weights = {**DEFAULT_WEIGHTS, **{str(k): float(v) for k, v in dict(self.weights).items()}}
        for code, weight in weights.items():
            if not 0.0 <= weight <= 1.0:
                raise PolicyError(f"weight of {code} must be in [0, 1], got {weight}")
        object.__setattr__(self, "weights", MappingProxyType(weights))
        object.__setattr__(self, "replica_terms", tuple(t.strip().lower() for t in self.replica_terms if t.strip()))
        if self.top_k < 1:
            raise PolicyError(f"top_k must be >= 1, got {self.top_k}")
        if self.verify_top < 0:
            raise PolicyError(f"verify_top must be >= 0, got {self.verify_top}")
        if not 0.0 < self.price_ratio < 1.0:
            raise PolicyError(f"price_ratio must be in (0, 1), got {self.price_ratio}")
        if not 0.0 <= self.min_risk_to_flag <= 1.0:
            raise PolicyError(f"min_risk_to_flag must be in [0, 1], got {self.min_risk_to_flag}")

    def thresholds_for(self, embedder_kind: str) -> EngineThresholds:
        """The thresholds of an engine; an engine without its own falls back to clip's."""
        return self.engine_thresholds.get(embedder_kind) or self.engine_thresholds.get("clip") or EngineThresholds(
            0.95, 0.82, 0.7
        )

    def with_thresholds(self, embedder_kind: str, thresholds: EngineThresholds) -> Policy:
        """A copy with one engine's thresholds replaced."""
        return replace(self, engine_thresholds={**self.engine_thresholds, embedder_kind: thresholds})

    def with_extra_replica_terms(self, *terms: str) -> Policy:
        return replace(self, replica_terms=(*self.replica_terms, *terms))

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["engine_thresholds"] = {k: asdict(v) for k, v in self.engine_thresholds.items()}
        data["currency_rates"] = dict(self.currency_rates)
        data["weights"] = dict(self.weights)
        data["replica_terms"] = list(self.replica_terms)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PolicyError(f"unknown policy field(s): {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        values = dict(data)
        if "replica_terms" in values:
            values["replica_terms"] = tuple(values["replica_terms"])
        if "engine_thresholds" in values:
            values["engine_thresholds"] = {**DEFAULT_ENGINE_THRESHOLDS, **values["engine_thresholds"]}
        return cls(**values)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Read a policy JSON file (fields left out keep their defaults)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise PolicyError(f"{path}: cannot read policy file ({exc.strerror or exc})") from exc
        except json.JSONDecodeError as exc:
            raise PolicyError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from exc
        if not isinstance(data, dict):
            raise PolicyError(f"{path}: a policy file must hold a JSON object")
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"{path}: {exc}") from exc
