"""One listing in, one explained :class:`Verdict` out."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from knockoff.decide import signals as sig
from knockoff.catalog.readers import Brand, Listing, ReferenceImage
from knockoff.errors import ConfigError, ImageError
from knockoff.catalog.images import DEFAULT_MAX_PIXELS, load_image
from knockoff.match.index import Hit, ReferenceIndex
from knockoff.decide.policy import Policy

log = logging.getLogger(__name__)

VerdictName = Literal["suspect", "authorized", "no_match", "error"]
VERDICTS: tuple[str, ...] = ("suspect", "authorized", "no_match", "error")


@dataclass(frozen=True)
class Reason:
    """One reason for a verdict: a stable code and a plain message a reviewer can check."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Match:
    """The best reference product for a listing."""

    brand: str
    product_id: str
    product_name: str
    reference_image: str
    reference_label: str
    similarity: float
    tier: str | None
    listing_image: str
    reference_price: float | None = None
    reference_currency: str | None = None
    verification: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Verdict:
    """The decision on one listing: ``suspect``, ``authorized``, ``no_match`` or ``error``."""

    listing_id: str
    verdict: str
    risk: float
    match: Match | None
    reasons: tuple[Reason, ...]
    signals: tuple[sig.Signal, ...] = ()
    engine: str = ""
    listing: Listing | None = None
    skipped_images: tuple[str, ...] = ()
    error: str | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ConfigError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if not 0.0 <= self.risk <= 1.0:
            raise ConfigError(f"risk must be in [0, 1], got {self.risk}")

    @property
    def is_suspect(self) -> bool:
        return self.verdict == "suspect"

    def to_dict(self) -> dict[str, Any]:
        return {
            "listing_id": self.listing_id,
            "verdict": self.verdict,
            "risk": round(self.risk, 4),
            "match": self.match.to_dict() if self.match else None,
            "reasons": [r.to_dict() for r in self.reasons],
            "signals": [s.to_dict() for s in self.signals],
            "engine": self.engine,
            "listing": self.listing.to_dict() if self.listing else None,
            "skipped_images": list(self.skipped_images),
            "error": self.error,
        }


def error_verdict(listing: Listing, problems: Sequence[str], engine: str = "") -> Verdict:
    """The verdict of a listing none of whose photos could be read."""
    text = "; ".join(problems) or "no readable image"
    return Verdict(
        listing.listing_id, "error", 0.0, None, (Reason("ERROR", text),), engine=engine, listing=listing,
        skipped_images=tuple(str(p) for p in listing.images), error=text,
    )


@dataclass
class _Candidate:
    hit: Hit
    listing_image: int
    verification: Any = None
    same_package: bool = False


@dataclass
class ListingImages:
    """The decoded photos of a listing, with the problems of those that could not be read."""

    paths: list[Path] = field(default_factory=list)
    images: list[Image.Image] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


DEFAULT_MAX_SIDE = 1024
"""Listing photos are scaled down to this longer side after decoding: enough for every engine and for the
geometric check, and it bounds the memory a photo takes in a batch."""


def decode_listing(
    listing: Listing, *, min_side: int, max_side: int = DEFAULT_MAX_SIDE, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> ListingImages:
    """Decode a listing's photos (a picklable function, so that scan workers can run it)."""
    out = ListingImages()
    for path in listing.images:
        try:
            image = load_image(path, min_side=min_side, max_pixels=max_pixels)
        except ImageError as error:
            out.problems.append(str(error))
            out.skipped.append(str(path))
            continue
        if max(image.size) > max_side:
            image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
        out.images.append(image)
        out.paths.append(Path(path))
    return out


KEYPOINT_SHORTLIST_MAX_REFERENCES = 5_000


class Detector:
    """Checks listings against a :class:`ReferenceIndex` with a :class:`Policy`.

    ``verifier``: ``"auto"`` uses geometric verification (OpenCV) when it is installed and the policy's
    ``verify_top`` is above 0; ``None`` turns it off; or pass a ``knockoff.match.verify.GeometricVerifier``.

    ``keypoint_shortlist``: with a verifier, this many more references, those that most of the listing
    photo's RootSIFT keypoints vote for (:class:`knockoff.match.keypoints.KeypointShortlist`), are verified
    besides the global top ``verify_top``: a rotated, warped or collaged copy that the global descriptor
    ranks low is still checked. The references' keypoints are computed once, on first use, and kept in
    memory, so the shortlist is used only up to ``KEYPOINT_SHORTLIST_MAX_REFERENCES`` reference photos (500
    float32 descriptors each: about 256 KB a photo). ``"auto"`` (the default): 3 for the perceptual engine,
    whose global descriptor ranks such copies low, and off for engines that see content (clip), where the
    vote would cost more than it finds. 0 or ``None`` turns it off.
    """

    def __init__(self, index: ReferenceIndex, policy: Policy | None = None, *, verifier: Any = "auto",
                 max_pixels: int | None = DEFAULT_MAX_PIXELS, max_side: int = DEFAULT_MAX_SIDE,
                 keypoint_shortlist: int | str | None = "auto"):
        self.index = index
        self.max_side = max_side
        self.policy = policy or Policy()
        self.thresholds = self.policy.thresholds_for(index.embedder.kind)
        self.max_pixels = max_pixels
        self.verifier = self._make_verifier(verifier)
        self._reference_features: OrderedDict[int, Any] = OrderedDict()
        #: references added to the verification shortlist by keypoint votes (knockoff.match.keypoints); 0/None: off
        if keypoint_shortlist == "auto":
            keypoint_shortlist = 3 if index.embedder.kind == "perceptual" else 0
        self.keypoint_shortlist = int(keypoint_shortlist or 0)
        self._keypoints: Any = None
        self._keypoints_size = -1
        self._last_vectors: Sequence[np.ndarray] | None = None
        self._prices: tuple[int, dict[tuple[str, str], tuple[float, str | None]]] | None = None

    def _make_verifier(self, verifier: Any) -> Any:
        if verifier != "auto":
            return verifier
        if self.policy.verify_top == 0:
            return None
        from knockoff.match import verify

        if not verify.opencv_available():
            log.info("OpenCV is not installed: geometric verification is off")
            return None
        return verify.GeometricVerifier(packaging=verify.PackagingSettings() if self.policy.packaging_match else None)

    @property
    def engine(self) -> str:
        return self.index.embedder.name

    # -- the three steps, public so that a batch pipeline can run them in its own order --------------

    def load(self, listing: Listing) -> ListingImages:
        """Decode the listing's photos; unreadable ones are recorded, not raised."""
        return decode_listing(listing, min_side=self.index.embedder.input_size, max_side=self.max_side,
                              max_pixels=self.max_pixels)

    def embed(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        """Embed every query view of each photo; one array of views per photo."""
        embedder = self.index.embedder
        views = [embedder.query_views(image) for image in images]
        flat = [v for group in views for v in group]
        vectors = embedder.embed(flat) if flat else np.zeros((0, embedder.dim), np.float32)
        out, start = [], 0
        for group in views:
            out.append(vectors[start : start + len(group)])
            start += len(group)
        return out

    def search(self, vectors: Sequence[np.ndarray]) -> list[list[list[Hit]]]:
        """Search the views of many photos in one index call; per photo, per view, the top hits."""
        sizes = [len(views) for views in vectors]
        if not sum(sizes):
            return [[] for _ in sizes]
        flat = self.index.search(np.concatenate([v for v in vectors if len(v)]), self.policy.top_k)
        out, start = [], 0
        for size in sizes:
            out.append(flat[start : start + size])
            start += size
        return out

    def decide(
        self,
        listing: Listing,
        loaded: ListingImages,
        vectors: Sequence[np.ndarray],
        hits: Sequence[list[list[Hit]]] | None = None,
    ) -> Verdict:
        """Search (unless ``hits`` of :meth:`search` are given), verify the best candidates, compute the
        signals and the verdict."""
        if not loaded.images:
            return error_verdict(listing, loaded.problems, self.engine)
        candidates = self._candidates(vectors, hits if hits is not None else self.search(vectors))
        best = self._verify_and_pick(candidates, loaded.images)
        return self._verdict(listing, loaded, best)

    def check(self, listing: Listing) -> Verdict:
        """Check one listing end to end."""
        loaded = self.load(listing)
        if not loaded.images:
            return error_verdict(listing, loaded.problems, self.engine)
        return self.decide(listing, loaded, self.embed(loaded.images))

    def check_many(self, listings: Sequence[Listing]) -> list[Verdict]:
        return [self.check(listing) for listing in listings]

    # -- internals ------------------------------------------------------------------------------------

    def _candidates(self, vectors: Sequence[np.ndarray], hits: Sequence[list[list[Hit]]]) -> list[_Candidate]:
        """Best hit per reference product over every photo and view, most similar first."""
        self._last_vectors = vectors
        best: dict[tuple[str, str], _Candidate] = {}
        for image_number, per_view in enumerate(hits):
            for view_hits in per_view:
                for hit in view_hits:
                    key = (hit.reference.brand, hit.reference.product_id)
                    if key not in best or hit.similarity > best[key].hit.similarity:
                        best[key] = _Candidate(hit, image_number)
        return sorted(best.values(), key=lambda c: -c.hit.similarity)

    def _keypoint_index(self) -> Any:
        """The keypoint-vote index of every reference photo, built on first use (rebuilt if the index grew)."""
        if self._keypoints is not None and self._keypoints_size == len(self.index.references):
            return self._keypoints
        if len(self.index.references) > KEYPOINT_SHORTLIST_MAX_REFERENCES:
            if self._keypoints_size != len(self.index.references):
                log.warning(
                    "keypoint shortlist off: %d reference photos is over its limit of %d (held in memory); "
                    "copies are shortlisted by the global descriptor only", len(self.index.references),
                    KEYPOINT_SHORTLIST_MAX_REFERENCES,
                )
                self._keypoints_size = len(self.index.references)
            return None
        from knockoff.match.keypoints import KeypointShortlist

        shortlist = KeypointShortlist()
        for ref_id, reference in self.index.references.items():
            features = self._features_of(Hit(reference, ref_id, 0.0))
            if features is not None:
                shortlist.add(ref_id, features)
        self._keypoints, self._keypoints_size = shortlist, len(self.index.references)
        return shortlist

    def _voted_candidates(self, candidates: list[_Candidate], images: Sequence[Image.Image],
                          shortlist: list[_Candidate]) -> list[_Candidate]:
        """Candidates that the listing photos' keypoints vote for, not already in ``shortlist``."""
        wanted = self.keypoint_shortlist
        packaging = self._packaging_settings()
        if wanted and packaging is not None:
            wanted = max(wanted, packaging.vote_top)
        if not wanted or not images:
            return []
        keypoints = self._keypoint_index()
        if keypoints is None or len(keypoints) == 0:
            return []
        taken = {c.hit.reference_id for c in shortlist}
        by_reference = {c.hit.reference_id: c for c in candidates}
        best: dict[int, tuple[int, int]] = {}  # reference id -> (votes, listing image)
        for number, image in enumerate(images):
            features = self.verifier._listing_features(image)
            for ref_id, votes in keypoints.vote(features, top=wanted + len(taken)):
                if ref_id not in taken and votes > best.get(ref_id, (0, 0))[0]:
                    best[ref_id] = (votes, number)
        out = []
        for ref_id, (_, number) in sorted(best.items(), key=lambda item: -item[1][0])[:wanted]:
            known = by_reference.get(ref_id)
            reference = self.index.references[ref_id]
            hit = known.hit if known is not None else Hit(
                reference, ref_id, self._similarity(reference, number, ref_id))
            out.append(_Candidate(hit, number))
        return out

    def _similarity(self, reference: ReferenceImage, listing_image: int, ref_id: int = -1) -> float:
        """Global similarity of a reference photo the search did not return: best over its views and the
        listing photo's query views (what the index would have said); 0 when it cannot be computed."""
        vectors = self._last_vectors
        if vectors is None or listing_image >= len(vectors) or len(vectors[listing_image]) == 0:
            return 0.0
        ref_vectors = self.index.reference_vectors(ref_id)
        if ref_vectors is None:
            try:
                image = load_image(reference.image, min_side=self.index.embedder.input_size)
            except ImageError:
                return 0.0
            embedder = self.index.embedder
            ref_vectors = embedder.embed(embedder.reference_views(image))
        return float(np.max(vectors[listing_image] @ ref_vectors.T))

    def _verify_and_pick(self, candidates: list[_Candidate], images: Sequence[Image.Image]) -> _Candidate | None:
        if not candidates and not (self.verifier is not None and self.keypoint_shortlist and images):
            return None
        if self.verifier is not None:
            shortlist = [c for c in candidates[: self.policy.verify_top] if c.hit.similarity >= self.thresholds.candidate]
            shortlist += self._voted_candidates(candidates, images, shortlist)
            for candidate in shortlist:
                reference_features = self._features_of(candidate.hit)
                if reference_features is None:
                    continue
                candidate.verification = self.verifier.verify(images[candidate.listing_image], reference_features)
            verified = [c for c in shortlist if c.verification is not None and c.verification.verified]
            if verified:
                return max(verified, key=lambda c: (c.verification.inliers, c.hit.similarity))
            package = self._same_package(shortlist)
            if package is not None:
                return package
        return candidates[0] if candidates else None

    def _packaging_settings(self) -> Any:
        """The packaging checks when ``Policy.packaging_match`` is on and the verifier keeps their pairs."""
        if not self.policy.packaging_match or self.verifier is None:
            return None
        from knockoff.match.verify import PackagingSettings

        return getattr(self.verifier, "packaging", None) or PackagingSettings()

    def _same_package(self, shortlist: list[_Candidate]) -> _Candidate | None:
        """The candidate whose official photo shows the listing's printed packaging (``Policy.packaging_match``):
        it passes the packaging checks and beats the best reference of every other product by a margin."""
        settings = self._packaging_settings()
        if settings is None:
            return None
        from knockoff.match.verify import pick_same_package

        checked = [c for c in shortlist if c.verification is not None]
        # ties between photos of one product: the global similarity decides (stable order: most similar first)
        checked.sort(key=lambda c: -c.hit.similarity)
        chosen = pick_same_package(
            [((c.hit.reference.brand, c.hit.reference.product_id), c.verification) for c in checked], settings)
        if chosen is None:
            return None
        best = checked[chosen]
        best.same_package = True
        return best

    def _features_of(self, hit: Hit) -> Any:
        cached = self._reference_features.get(hit.reference_id)
        if cached is not None:
            self._reference_features.move_to_end(hit.reference_id)
            return cached
        features = self.index.reference_features(hit.reference_id, getattr(self.verifier, "settings", None))
        try:
            if features is None:
                features = self.verifier.features(load_image(hit.reference.image))
        except ImageError as error:
            log.warning("reference image not verifiable: %s", error)
            return None
        self._reference_features[hit.reference_id] = features
        if len(self._reference_features) > 4096:
            self._reference_features.popitem(last=False)
        return features

    def _product_price(self, reference: ReferenceImage) -> tuple[float | None, str | None]:
        """The reference price of a product: its image's own, else any of its images' (a cached map)."""
        if reference.price is not None:
            return reference.price, reference.currency
        if self._prices is None or self._prices[0] != len(self.index.references):
            prices: dict[tuple[str, str], tuple[float, str | None]] = {}
            for other in self.index.references.values():
                if other.price is not None:
                    prices.setdefault((other.brand, other.product_id), (other.price, other.currency))
            self._prices = (len(self.index.references), prices)
        return self._prices[1].get((reference.brand, reference.product_id), (None, None))

    def _verdict(self, listing: Listing, loaded: ListingImages, best: _Candidate | None) -> Verdict:
        skipped = tuple(loaded.skipped)
        if best is None:
            return Verdict(listing.listing_id, "no_match", 0.0, None,
                           (Reason(sig.VISUAL_MATCH, "no reference photo found"),),
                           engine=self.engine, listing=listing, skipped_images=skipped)
        ref = best.hit.reference
        verification = best.verification
        verified_text = (
            verification.describe(ref.label) if verification is not None and verification.verified else None
        )
        package_text = (
            verification.describe_packaging(ref.label) if best.same_package and verified_text is None else None
        )
        match_floor = self.thresholds.match
        if self.thresholds.match_needs_verification and self.verifier is not None:
            match_floor = self.thresholds.near_copy
        visual = sig.visual_match(
            best.hit.similarity, ref.label, near_copy=self.thresholds.near_copy, match=match_floor,
            verified_copy=verified_text, same_package=package_text,
        )
        price, currency = self._product_price(ref)
        match = Match(
            brand=ref.brand, product_id=ref.product_id, product_name=ref.product_name,
            reference_image=str(ref.image), reference_label=ref.label, similarity=round(best.hit.similarity, 4),
            tier=visual.details.get("tier"), listing_image=str(loaded.paths[best.listing_image]),
            reference_price=price, reference_currency=currency,
            verification=(
                {**verification.to_dict(), "listing_size": list(loaded.images[best.listing_image].size)}
                if verification is not None else None
            ),
        )
        if not visual.hit:
            return Verdict(listing.listing_id, "no_match", 0.0, match, (Reason(visual.code, visual.message),),
                           (visual,), self.engine, listing, skipped)
        brand = self.index.brand(ref.brand) or Brand(ref.brand)
        seller = sig.unauthorized_seller(listing.seller, brand)
        risk_signals = (
            seller,
            sig.price_implausible(listing.price, listing.currency, price, currency,
                                  ratio=self.policy.price_ratio, rates=self.policy.currency_rates),
            sig.brand_misuse(listing.title, brand, seller_authorized=brand.is_authorized(listing.seller)),
            sig.replica_terms(listing.title, self.policy.replica_terms),
        )
        hits = [s for s in risk_signals if s.hit]
        confidence = 1.0 if visual.details["tier"] == "near-copy" else 0.8
        combined = 1.0 - float(np.prod([1.0 - self.policy.weights.get(s.code, 0.5) for s in hits]))
        risk = round(min(1.0, confidence * (0.1 + 0.9 * combined)), 4)
        suspect = bool(hits) and risk >= self.policy.min_risk_to_flag
        reasons = (Reason(visual.code, visual.message), *(Reason(s.code, s.message) for s in hits))
        return Verdict(listing.listing_id, "suspect" if suspect else "authorized", risk, match, reasons,
                       (visual, *risk_signals), self.engine, listing, skipped)
