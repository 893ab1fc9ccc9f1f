"""One listing in, one explained :class:`Verdict` out: decode, embed, search, verify the best candidates,
read the photos' text (``Policy.text``, off by default), compute the signals and apply the decision rule
(:mod:`knockoff.decide.rule`)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from knockoff.catalog.images import DEFAULT_MAX_PIXELS, FRAMES_INFO, load_image
from knockoff.catalog.readers import Brand, Listing, ReferenceImage
from knockoff.decide import rule
from knockoff.decide import signals as sig
from knockoff.decide.policy import EngineThresholds, ImageSettings, Policy
from knockoff.decide.text_evidence import (
    PhotoEvidence,
    TextIdentity,
    TextMatcher,
    package_within_brand,
    packaging_contradicts,
    text_not_read,
    unread_text,
)
from knockoff.decide.verdict import VERDICTS, Match, Reason, Verdict, error_verdict
from knockoff.errors import ConfigError, ImageError
from knockoff.match.index import Hit, ReferenceIndex
from knockoff.match.text import TextReading, reader_status
from knockoff.match.text_index import product_key, split_product_key

__all__ = ["DEFAULT_MAX_SIDE", "VERDICTS", "Detector", "ListingImages", "Match", "Reason", "Verdict",
           "decode_listing", "error_verdict"]

log = logging.getLogger(__name__)

DEFAULT_MAX_SIDE = ImageSettings().max_side
"""Listing photos are scaled down to this longer side after decoding (``Policy.images.max_side``)."""

_FEATURE_CACHE = 4096  # reference photos whose local features are kept (a cache: no effect on results)
_UNSET: Any = object()


@dataclass
class _Candidate:
    hit: Hit
    listing_image: int
    verification: Any = None
    same_package: bool = False
    #: the packaging shows this candidate's brand but not which of its products (siblings alike)
    same_brand: bool = False
    #: its package won, but the listing photo looks like its official photo as a whole without being it (a
    #: sibling's official photo or a re-shot scene): the brand is named, not the product (``Detector._looks_alike``)
    look_alike: bool = False
    #: its package won, but the match shows a scene photographed anew, not a package (why, in words: see
    #: :func:`~knockoff.match.verify.scene_check`): the brand is named, not the product
    scene: str | None = None
    #: its package won, but the match does not single out its product from a sibling sharing the brand's design
    #: (why, in words: see :func:`~knockoff.match.siblings.product_check`): the brand is named, not the product
    unproven: str | None = None


@dataclass
class ListingImages:
    """The decoded photos of a listing, with the problems of those that could not be read."""

    paths: list[Path] = field(default_factory=list)
    images: list[Image.Image] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: (reason code, message) of what was left unchecked: later frames of an animated file, photos over the cap
    notes: list[tuple[str, str]] = field(default_factory=list)


#: photos of one listing that are checked (each file once): marketplaces allow 9 to 24 a listing; a row naming
#: thousands (the same file again and again) once held them all decoded at once (4 MB each at 1024 px) and
#: read each one's text
MAX_PHOTOS = 50


def decode_listing(
    listing: Listing, *, min_side: int, max_side: int = DEFAULT_MAX_SIDE, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> ListingImages:
    """Decode a listing's photos (a picklable function, so that scan workers can run it): each file once, at most
    :data:`MAX_PHOTOS` of them (the rest are skipped, and a note says so)."""
    out = ListingImages()
    photos = list(dict.fromkeys(listing.images))
    if len(photos) > MAX_PHOTOS:
        out.skipped += [str(p) for p in photos[MAX_PHOTOS:]]
        out.notes.append(("PHOTOS_NOT_CHECKED", f"{len(photos) - MAX_PHOTOS} of the listing's {len(photos)} photos "
                          f"were not checked, from {photos[MAX_PHOTOS]}: at most {MAX_PHOTOS} are"))
    for path in photos[:MAX_PHOTOS]:
        try:
            image = load_image(path, min_side=min_side, max_pixels=max_pixels)
        except ImageError as error:
            out.problems.append(str(error))
            out.skipped.append(str(path))
            continue
        frames = image.info.get(FRAMES_INFO, 1)
        if frames > 1:
            out.notes.append(("FRAMES_NOT_CHECKED", f"{path}: only the first of its {frames} frames was checked (an "
                              "animated or multi-page image)"))
        if max(image.size) > max_side:
            image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
        out.images.append(image)
        out.paths.append(Path(path))
    return out


@dataclass(frozen=True)
class _Prices:
    """Reference prices of an index generation: per product (any of its images'), and per brand."""

    generation: int
    by_product: dict[tuple[str, str], tuple[float, str | None]]
    by_brand: dict[str, list[tuple[float, str | None]]]


class Detector:
    """Checks listings against a :class:`ReferenceIndex` with a :class:`Policy` (every setting is there).

    ``verifier``: ``"auto"`` uses geometric verification (OpenCV) when it is installed and the policy's
    ``verify_top`` is above 0, with ``policy.verifier`` and (with ``packaging_match``) ``policy.packaging``;
    ``None`` turns it off; or pass a ``knockoff.match.verify.GeometricVerifier``. ``max_side`` and
    ``max_pixels``, when given, replace ``policy.images``'s (the detector's ``policy`` says what is in force).
    With ``policy.text.enabled``, the text of every listing photo is read (a :class:`ConfigError` here when no
    text reader can be loaded) and matched to the index's brands and, for an index built with text, products.

    The detector may be used while its index changes (``add``, ``remove_product``): what it keeps about the
    index (keypoint shortlist, prices) is keyed on ``index.generation`` and rebuilt when that changes.
    """

    def __init__(self, index: ReferenceIndex, policy: Policy | None = None, *, verifier: Any = "auto",
                 max_pixels: Any = _UNSET, max_side: Any = _UNSET, read_all_text: bool = False):
        policy = policy or Policy()
        images = {k: v for k, v in (("max_side", max_side), ("max_pixels", max_pixels)) if v is not _UNSET}
        if images:
            policy = replace(policy, images=replace(policy.images, **images))
        self._index = index
        self._policy = policy
        self._thresholds = policy.thresholds_for(index.embedder.kind)
        self.verifier = self._make_verifier(verifier)
        self._reference_features: OrderedDict[int, Any] = OrderedDict()  # by reference id (never reused)
        self._keypoints: tuple[int, Any] | None = None  # (index generation, shortlist or None when off)
        self._brand_groups: tuple[int, dict[int, int]] | None = None  # (index generation, reference id -> brand)
        self._prices: _Prices | None = None
        self._text: tuple[int, TextMatcher] | None = None  # (index generation, matcher); text reading on only
        #: read the text of every listing, even of one that is a suspect without it (calibration needs every signal)
        self._read_all_text = read_all_text
        if policy.text.enabled:
            reason = reader_status(policy.text.read)
            if reason is not None:
                raise ConfigError(f"the policy reads text in photos (text.enabled, on by default), but {reason}; "
                                  "'\"text\": {\"enabled\": false}' in a policy file checks without it")

    def _make_verifier(self, verifier: Any) -> Any:
        if verifier != "auto":
            return verifier
        if self._policy.verify_top == 0:
            return None
        from knockoff.match import verify

        if not verify.opencv_available():
            log.info("OpenCV is not installed: geometric verification is off")
            return None
        packaging = self._policy.packaging if self._policy.packaging_match else None
        return verify.GeometricVerifier(self._policy.verifier, packaging=packaging)

    @property
    def index(self) -> ReferenceIndex:
        return self._index

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def thresholds(self) -> EngineThresholds:
        """The policy's thresholds for the index's engine."""
        return self._thresholds

    @property
    def engine(self) -> str:
        return self._index.embedder.name

    @property
    def max_side(self) -> int:
        return self._policy.images.max_side

    @property
    def max_pixels(self) -> int | None:
        return self._policy.images.max_pixels

    @property
    def keypoint_shortlist(self) -> int:
        """References added to the verification shortlist by keypoint votes (0: off)."""
        if self.verifier is None:
            return 0
        return self._policy.shortlist.size_for(self._index.embedder.kind)

    # -- the steps, public so that a batch pipeline can run them in its own order ------------------------

    def load(self, listing: Listing) -> ListingImages:
        """Decode the listing's photos; unreadable ones are recorded, not raised."""
        return decode_listing(listing, min_side=self._index.embedder.input_size, max_side=self.max_side,
                              max_pixels=self.max_pixels)

    def embed(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        """Embed every query view of each photo; one array of views per photo."""
        embedder = self._index.embedder
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
        flat = self._index.search(np.concatenate([v for v in vectors if len(v)]), self._policy.top_k)
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
        *,
        unmatched: bool = False,
    ) -> Verdict:
        """Search (unless ``hits`` of :meth:`search` for these ``vectors`` are given), verify the best
        candidates, compute the signals and the verdict; with ``unmatched``, the verdict of
        :meth:`check_unmatched`."""
        if not loaded.images:
            return error_verdict(listing, loaded.problems, self.engine)
        candidates = self._candidates(hits if hits is not None else self.search(vectors))
        checked: list[_Candidate] = []
        reading = self._start_reading(listing, loaded, candidates)
        try:
            best = self._verify_and_pick(candidates, loaded.images, vectors, checked)
            evidence = None
            if self._policy.text.enabled:
                settled = None if self._read_all_text or unmatched else self._suspect_without_text(listing, loaded,
                                                                                                      best)
                if settled is not None:
                    return _with_skipped(settled, loaded)
                evidence = self._text_matcher().read(loaded.images, loaded.paths, reading)
        finally:
            if reading is not None:
                reading.cancel()  # nothing when it has finished
        return _with_skipped(self._verdict(listing, loaded, None if unmatched else best, evidence, checked), loaded)

    def _start_reading(self, listing: Listing, loaded: ListingImages,
                       candidates: list[_Candidate]) -> TextReading | None:
        """The reading of the photos' text to run while the photo match is verified (``text.read.overlap``: on
        the cores the match leaves idle), or None: then the text is read after the match, only when the verdict
        needs it. None too for a likely copy sold by a seller its brand does not authorize (a candidate at the
        engine's near-copy similarity or above): the match alone then likely makes it a suspect, and a reading
        begun would mostly be thrown away. This chooses only when the text is read, never what is decided."""
        if not self._policy.text.enabled:
            return None
        top = candidates[0] if candidates else None
        if top is not None and top.hit.similarity >= self._thresholds.near_copy:
            brand = self._index.brand(top.hit.reference.brand)
            if brand is not None and sig.seller_authorized(brand, listing.seller) is False:
                return None
        return self._text_matcher().start(loaded.images)

    def _suspect_without_text(self, listing: Listing, loaded: ListingImages,
                              best: _Candidate | None) -> Verdict | None:
        """The verdict of a listing whose photo matched a reference (a visual tier) and that is ``suspect``
        without its photos' text, with the photo-text signals ``unknown`` ("not read"); None otherwise (then
        the text is read). Reading could not change that verdict (:mod:`knockoff.decide.rule`): with a visual
        tier the text never changes the match (it names the product only when no photo matched), its signals
        can only add hits (the photo's replica terms join the title's; a clear removes no hit), a match's risk
        with a hit grows with every further hit (weights lie in [0, 1]), and unknown signals count only when none hits. Only the risk
        may be lower than with the text read: it is a lower bound."""
        if best is None or self._visual(best).details.get("tier") is None:
            return None
        verdict = self._verdict(listing, loaded, best, None)
        if verdict.verdict != "suspect":
            return None
        return replace(verdict, signals=(*verdict.signals, *text_not_read(
            "the listing is a suspect on its photo match and other signals already; its text could only add to that")))

    def check(self, listing: Listing) -> Verdict:
        """Check one listing end to end."""
        loaded = self.load(listing)
        if not loaded.images:
            return error_verdict(listing, loaded.problems, self.engine)
        return self.decide(listing, loaded, self.embed(loaded.images))

    def check_unmatched(self, listing: Listing) -> Verdict:
        """The verdict ``listing`` gets when none of its photos counts as a photo match, as under a threshold too
        strict for its best candidate: it rests on its title and, with text reading on, on its photos' text (a
        match of tier ``text``). For calibration (:mod:`knockoff.evaluate.calibrate`)."""
        loaded = self.load(listing)
        if not loaded.images:
            return error_verdict(listing, loaded.problems, self.engine)
        return self.decide(listing, loaded, self.embed(loaded.images), unmatched=True)

    def check_decoded(self, batch: Sequence[tuple[Listing, ListingImages]]) -> list[Verdict]:
        """Check listings whose photos are decoded already (:meth:`load`, :func:`decode_listing`): every photo
        of the batch is embedded and searched in one call, then each listing is decided."""
        images = [image for _, loaded in batch for image in loaded.images]
        vectors = self.embed(images) if images else []
        hits = self.search(vectors) if images else []
        verdicts, cursor = [], 0
        for listing, loaded in batch:
            n = len(loaded.images)
            verdicts.append(
                self.decide(listing, loaded, vectors[cursor : cursor + n], hits[cursor : cursor + n]) if n
                else error_verdict(listing, loaded.problems, self.engine)
            )
            cursor += n
        return verdicts

    # -- candidates -----------------------------------------------------------------------------------

    @staticmethod
    def _candidates(hits: Sequence[list[list[Hit]]]) -> list[_Candidate]:
        """Best hit per reference product over every photo and view, most similar first."""
        best: dict[tuple[str, str], _Candidate] = {}
        for image_number, per_view in enumerate(hits):
            for view_hits in per_view:
                for hit in view_hits:
                    key = (hit.reference.brand, hit.reference.product_id)
                    if key not in best or hit.similarity > best[key].hit.similarity:
                        best[key] = _Candidate(hit, image_number)
        return sorted(best.values(), key=lambda c: -c.hit.similarity)

    def _keypoint_index(self) -> Any:
        """The keypoint shortlist of the index's current generation: the one stored with the index when it was
        built with the policy's shortlist settings, else one built here from the reference features (logged:
        slow for a large index, and in every process)."""
        generation = self._index.generation
        if self._keypoints is not None and self._keypoints[0] == generation:
            return self._keypoints[1]
        settings = self._policy.shortlist
        shortlist = self._index.keypoint_shortlist
        same_features = self._index.reference_features_fit(getattr(self.verifier, "settings", None))
        if shortlist is None or shortlist.params != settings.build_params() or not same_features:
            why = ("the verifier's feature settings differ from those of the index's keypoints" if shortlist is not None
                   and not same_features else _why_not_stored(shortlist, self._index.stores_features))
            log.warning("keypoint shortlist built in memory for %d reference photos: %s; run `knockoff index build` "
                        "again to store it with the index", len(self._index.references), why)
            shortlist = self._built_shortlist()
        self._keypoints = (generation, shortlist)
        return shortlist

    def _built_shortlist(self) -> Any:
        from knockoff.match.keypoints import KeypointShortlist

        shortlist = KeypointShortlist.from_params(self._policy.shortlist.build_params(),
                                                  expected_references=len(self._index.references))
        for ref_id, reference in self._index.references.items():
            features = self._features_of(Hit(reference, ref_id, 0.0))
            if features is not None:
                shortlist.add(ref_id, features)
        log.info("keypoint shortlist of %d reference photos: %s", len(shortlist), shortlist.index_plan)
        return shortlist

    def _voted_candidates(self, candidates: list[_Candidate], images: Sequence[Image.Image],
                          vectors: Sequence[np.ndarray], shortlist: list[_Candidate]) -> list[_Candidate]:
        """Candidates that the listing photos' keypoints vote for, not already in ``shortlist``."""
        wanted = self.keypoint_shortlist
        if wanted and self._policy.packaging_match:
            wanted = max(wanted, self._policy.packaging.vote_top)
        if not wanted or not images:
            return []
        keypoints = self._keypoint_index()
        if keypoints is None or keypoints.descriptor_count == 0:
            return []
        taken = {c.hit.reference_id for c in shortlist}
        settings = self._policy.shortlist
        by_reference = {c.hit.reference_id: c for c in candidates}
        best: dict[int, tuple[int, int]] = {}  # reference id -> (votes, listing image)
        for number, image in enumerate(images):
            features = self.verifier._listing_features(image)
            for ref_id, votes in keypoints.vote(features, top=wanted + len(taken), min_votes=settings.min_votes,
                                                query_features=settings.query_features, ratio=settings.ratio,
                                                neighbours=settings.neighbours, nprobe=settings.nprobe,
                                                groups=self._groups()):
                if ref_id not in taken and votes > best.get(ref_id, (0, 0))[0]:
                    best[ref_id] = (votes, number)
        out = []
        for ref_id, (_, number) in sorted(best.items(), key=lambda item: -item[1][0])[:wanted]:
            known = by_reference.get(ref_id)
            reference = self._index.references[ref_id]
            hit = known.hit if known is not None else Hit(
                reference, ref_id, self._similarity(reference, ref_id, vectors, number))
            out.append(_Candidate(hit, number))
        return out

    def _groups(self) -> dict[int, int]:
        """Reference id -> a number for its brand, for the keypoint vote (``KeypointShortlist.vote``'s ``groups``:
        a keypoint of a package design that a brand's products share votes for each of them)."""
        generation = self._index.generation
        if self._brand_groups is None or self._brand_groups[0] != generation:
            numbers: dict[str, int] = {}
            groups = {int(ref_id): numbers.setdefault(ref.brand.casefold(), len(numbers))
                      for ref_id, ref in self._index.references.items()}
            self._brand_groups = (generation, groups)
        return self._brand_groups[1]

    def _similarity(self, reference: ReferenceImage, ref_id: int, vectors: Sequence[np.ndarray],
                    listing_image: int) -> float:
        """Global similarity of a reference photo the search did not return: best over its views and the
        listing photo's query views (what the index would have said); 0 when it cannot be computed."""
        if listing_image >= len(vectors) or len(vectors[listing_image]) == 0:
            return 0.0
        ref_vectors = self._index.reference_vectors(ref_id)
        if ref_vectors is None:
            try:
                image = load_image(reference.image, min_side=self._index.embedder.input_size)
            except ImageError:
                return 0.0
            embedder = self._index.embedder
            ref_vectors = embedder.embed(embedder.reference_views(image))
        return float(np.max(vectors[listing_image] @ ref_vectors.T))

    def _verify_and_pick(self, candidates: list[_Candidate], images: Sequence[Image.Image],
                         vectors: Sequence[np.ndarray], checked: list[_Candidate] | None = None) -> _Candidate | None:
        """Verify the global shortlist, then (unless a copy is proven already and ``shortlist.stop_at_copy``)
        the candidates the keypoint vote adds; with ``packaging_match`` and no proven copy, match them a second
        time enlarged (:meth:`_second_look`). The best proven copy, else the same package, else the most similar
        candidate. ``checked``, when given, receives every candidate considered (for the packaging match within a
        brand the text names)."""
        if self.verifier is None:
            return candidates[0] if candidates else None
        stop = self._policy.shortlist.stop_at_copy
        shortlist = [c for c in candidates[: self._policy.verify_top] if c.hit.similarity >= self._thresholds.candidate]
        self._verify(shortlist, images, stop_at_copy=stop)
        if not (stop and any(_is_copy(c) for c in shortlist)):
            voted = self._voted_candidates(candidates, images, vectors, shortlist)
            self._verify(voted, images, stop_at_copy=stop)
            shortlist += voted
        self._second_look(shortlist, images, stop_at_copy=stop)
        if checked is not None:
            checked.extend(shortlist)
        verified = [c for c in shortlist if _is_copy(c)]
        if verified:
            return max(verified, key=lambda c: (c.verification.inliers, c.hit.similarity))
        package = self._same_package(shortlist, images)
        if package is not None:
            return package
        brand = self._same_brand(shortlist, images)
        if brand is not None:
            return brand
        return candidates[0] if candidates else None

    def _verify(self, shortlist: Sequence[_Candidate], images: Sequence[Image.Image], *, stop_at_copy: bool) -> None:
        """Verify each candidate in order (the copy check: no second, enlarged match); with ``stop_at_copy``, none
        after the first proven copy."""
        for candidate in shortlist:
            reference_features = self._features_of(candidate.hit)
            if reference_features is not None:
                candidate.verification = self.verifier.verify(images[candidate.listing_image], reference_features,
                                                              second_look=False)
            if stop_at_copy and _is_copy(candidate):
                return

    def _second_look(self, shortlist: Sequence[_Candidate], images: Sequence[Image.Image], *,
                     stop_at_copy: bool) -> None:
        """With ``packaging_match``, match the verified candidates a second time with their small photos enlarged
        (``GeometricVerifier.second_look``: most of the packaging match's cost), in order, keeping the better
        match of each; with ``stop_at_copy``, none after a proven copy. Not when a candidate is a proven copy
        already (the copy decides the product), nor when no candidate's first match found
        ``packaging.second_look_min_matches`` ratio-test matches (nothing there for a package to be seen in)."""
        looks = getattr(self.verifier, "second_look", None)
        checked = [c for c in shortlist if c.verification is not None]
        if not self._policy.packaging_match or looks is None or any(_is_copy(c) for c in checked):
            return
        if max((c.verification.matches for c in checked), default=0) < self._policy.packaging.second_look_min_matches:
            return
        for candidate in checked:
            candidate.verification = looks(images[candidate.listing_image], self._features_of(candidate.hit),
                                           candidate.verification)
            if stop_at_copy and _is_copy(candidate):
                return

    def _same_package(self, shortlist: list[_Candidate], images: Sequence[Image.Image] = ()) -> _Candidate | None:
        """The candidate whose official photo shows the listing's printed packaging (``Policy.packaging_match``):
        it passes the packaging checks and beats the best reference of every other product by a margin. Its
        product is named only when the match singles it out (:meth:`_prove_product`)."""
        if not self._policy.packaging_match:
            return None
        from knockoff.match.verify import pick_same_package, scene_check

        checked = [c for c in shortlist if c.verification is not None]
        # ties between photos of one product: the global similarity decides (stable order: most similar first)
        checked.sort(key=lambda c: -c.hit.similarity)
        chosen = pick_same_package(
            [((c.hit.reference.brand, c.hit.reference.product_id), c.verification) for c in checked],
            self._policy.packaging)
        if chosen is None:
            return None
        best = checked[chosen]
        best.same_package = True
        best.scene = None if _is_copy(best) else scene_check(best.verification, self._policy.packaging)
        best.look_alike = self._looks_alike(best)
        self._prove_product(best, images)
        return best

    def _prove_product(self, package: _Candidate, images: Sequence[Image.Image]) -> None:
        """Whether the winning package ``package`` (not a proven copy) also shows that it is its product rather
        than a sibling sharing the brand's design (:func:`~knockoff.match.siblings.product_check`, on the small
        print measured here when it was not): when not, ``package.unproven`` says why and the brand is named."""
        from knockoff.match.siblings import product_check

        if _is_copy(package):
            return
        self._measure_print([package], images)
        package.unproven = product_check(package.verification, self._policy.packaging)

    def _looks_alike(self, best: _Candidate) -> bool:
        """Whether the packaging match ``best`` (not a proven copy) names the brand only: the engine sees copies,
        not products (``match_needs_verification``), and the listing photo is globally as similar to the
        official photo as a likely copy (``match``), yet local features refuted the copy. That is a photo of the
        same design taken as the brand's photos are: most often the official photo of a sibling product missing
        from the catalog (another colour scheme or small print), else a re-shot scene; a seller's own photo of the
        package is far less similar. Measured (perceptual engine): 22 of 22 siblings' official photos that named
        a product at 0.82-0.98, grocerystore store photos of the right product at most 0.71
        (``bench_sibling_verdicts.py --packaging``, ``bench_grocery_fusion.py``)."""
        thresholds = self._thresholds
        return (thresholds.match_needs_verification and not _is_copy(best)
                and best.hit.similarity >= thresholds.match)

    def _same_brand(self, shortlist: list[_Candidate], images: Sequence[Image.Image] = ()) -> _Candidate | None:
        """With no product's packaging singled out, the candidate whose brand the packaging shows
        (:func:`~knockoff.match.verify.pick_same_brand`: the brand's products share a package design and match
        alike, while every other brand's lose by the packaging margin): the brand is named, not the product
        (``review``, never ``suspect``: a person must tell which product it is), unless the listing reproduces one
        alike product's small print by a lead over the others' (:func:`~knockoff.match.siblings.pick_by_print`):
        then that product's package is the match, as :meth:`_same_package`'s."""
        if not self._policy.packaging_match:
            return None
        from knockoff.match.siblings import pick_by_print
        from knockoff.match.verify import pick_same_brand

        checked = sorted((c for c in shortlist if c.verification is not None), key=lambda c: -c.hit.similarity)
        chosen = pick_same_brand([((c.hit.reference.brand.casefold(), c.hit.reference.product_id), c.verification)
                                  for c in checked], self._policy.packaging)
        if chosen is None:
            return None
        best = checked[chosen]
        brand = [c for c in checked if c.hit.reference.brand.casefold() == best.hit.reference.brand.casefold()]
        self._measure_print(brand, images)
        by_print = pick_by_print([(c.hit.reference.product_id, c.verification) for c in brand], self._policy.packaging)
        if by_print is not None:  # the small print tells which of the alike products it is
            product = brand[by_print]
            product.same_package = True
            product.look_alike = self._looks_alike(product)
            self._prove_product(product, images)
            return product
        best.same_brand = True
        return best

    def _measure_print(self, candidates: Sequence[_Candidate], images: Sequence[Image.Image]) -> None:
        """Measure the small print (``GeometricVerifier.with_print``) of the candidates' matches that pass the
        packaging checks, for :func:`~knockoff.match.siblings.pick_by_print`."""
        with_print = getattr(self.verifier, "with_print", None)
        if with_print is None:
            return
        for candidate in candidates:
            features = self._features_of(candidate.hit) if candidate.verification is not None else None
            if features is not None and candidate.listing_image < len(images):
                candidate.verification = with_print(images[candidate.listing_image], features, candidate.verification)

    def _features_of(self, hit: Hit) -> Any:
        cached = self._reference_features.get(hit.reference_id)
        if cached is not None:
            self._reference_features.move_to_end(hit.reference_id)
            return cached
        features = self._index.reference_features(hit.reference_id, getattr(self.verifier, "settings", None))
        try:
            if features is None:
                features = self.verifier.features(load_image(hit.reference.image))
        except ImageError as error:
            log.warning("reference image not verifiable: %s", error)
            return None
        self._reference_features[hit.reference_id] = features
        if len(self._reference_features) > _FEATURE_CACHE:
            self._reference_features.popitem(last=False)
        return features

    # -- signals and verdict --------------------------------------------------------------------------

    def _catalog_prices(self) -> _Prices:
        """Reference prices per product and per brand, for the index's current generation."""
        generation = self._index.generation
        if self._prices is None or self._prices.generation != generation:
            by_product = self._index.references.product_prices()
            by_brand: dict[str, list[tuple[float, str | None]]] = {}
            for (brand, _), price in sorted(by_product.items()):
                by_brand.setdefault(brand.casefold(), []).append(price)
            self._prices = _Prices(generation, by_product, by_brand)
        return self._prices

    def _product_price(self, reference: ReferenceImage) -> tuple[float | None, str | None]:
        """The reference price of a product: its image's own, else any of its images'."""
        if reference.price is not None:
            return reference.price, reference.currency
        return self._catalog_prices().by_product.get((reference.brand, reference.product_id), (None, None))

    def _match(self, best: _Candidate, loaded: ListingImages, tier: str | None) -> Match:
        ref, verification = best.hit.reference, best.verification
        price, currency = self._product_price(ref)
        if _brand_only(best) and tier == "same-package":  # the brand only: no product price
            ref, price, currency = replace(ref, product_id="", product_name=""), None, None
        return Match(
            brand=ref.brand, product_id=ref.product_id, product_name=ref.product_name,
            reference_image=str(ref.image), reference_label=ref.label, similarity=round(best.hit.similarity, 4),
            tier=tier, listing_image=str(loaded.paths[best.listing_image]),
            reference_price=price, reference_currency=currency,
            verification=(
                {**verification.to_dict(), "listing_size": list(loaded.images[best.listing_image].size)}
                if verification is not None else None
            ),
        )

    def _visual(self, best: _Candidate) -> sig.Signal:
        ref, verification = best.hit.reference, best.verification
        verified = verification.describe(ref.label) if verification is not None and verification.verified else None
        package = (verification.describe_packaging(ref.label) if (best.same_package or best.same_brand)
                   and not verified else None)
        failed = None if verification is None or verification.verified else (verification.failed_check or "no proof")
        refuted = failed if verification is not None and verification.geometry_verified else None
        visual = sig.visual_match(best.hit.similarity, ref.label, near_copy=self._thresholds.near_copy,
                                  match=self._thresholds.match_floor(self.verifier is not None),
                                  verified_copy=verified, same_package=package, refuted=refuted,
                                  unconfirmed=None if refuted else failed, too_plain=self._too_plain(verification))
        if visual.details.get("tier") != "same-package" or not _brand_only(best):
            return visual
        if best.look_alike:  # the likelier reading first (a sibling's official photo); the scene's reason kept
            signal = _look_alike(visual, best, failed or "not proven a copy", self._thresholds.match)
            return signal if best.scene is None else replace(signal, details={**signal.details, "scene": best.scene})
        if best.scene is not None:
            return _scene(visual, best, best.scene)
        if best.unproven is not None:
            return _unproven(visual, best, best.unproven)
        return sig.Signal(visual.code, visual.state, (
            f"photo shows the packaging of {ref.brand}, not which of its products: {package}, but official photos "
            f"of other {ref.brand} products match it about as well (their packages look alike), while every other "
            f"brand's match by far fewer (global similarity {best.hit.similarity:.2f})"),
            {**visual.details, "brand_only": True})

    def _too_plain(self, verification: Any) -> str | None:
        """Why the listing photo has too little detail to be compared with the official photo by local features
        (None: it has enough): fewer keypoints than a copy's proof needs matching, where the official photo has
        that many (a copy keeps its original's detail; a near-uniform photo, e.g. sky, has none). An official
        photo as plain as the listing's leaves the global similarity as the only evidence (a guess, ``review``)."""
        if verification is None or verification.verified or None in (verification.listing_keypoints,
                                                                      verification.reference_keypoints):
            return None
        needed = self.verifier.settings.min_inliers
        if verification.listing_keypoints >= needed or verification.reference_keypoints < needed:
            return None
        return (f"{verification.listing_keypoints} keypoints in it, {verification.reference_keypoints} in the "
                f"official photo; a copy's proof needs {needed} matching")

    def _risk_signals(self, listing: Listing, match: Match, evidence: PhotoEvidence | None = None,
                      product_words: tuple[str, ...] | None = None) -> tuple[sig.Signal, ...]:
        """The risk signals of a listing matched to ``match``'s product (its brand only when its product id is
        "": the price is then compared with every product of the brand), with the photo-text signals when the
        photos' text was read (``product_words``: those read, else looked up for the matched product)."""
        brand = self._index.brand(match.brand) or Brand(match.brand)
        policy = self._policy
        if match.product_id:
            price = sig.price_implausible(listing.price, listing.currency, match.reference_price,
                                          match.reference_currency, ratio=policy.price_ratio, rates=policy.currency_rates)
        else:
            price = sig.price_implausible_for_brand(
                listing.price, listing.currency, brand.name, self._catalog_prices().by_brand.get(brand.key, []),
                ratio=policy.price_ratio, rates=policy.currency_rates)
        authorized = sig.seller_authorized(brand, listing.seller)
        base = (sig.unauthorized_seller(listing.seller, brand), price,
                sig.brand_misuse(listing.title, brand, seller_authorized=authorized))
        replica = sig.replica_terms(listing.title, policy.replica_terms)
        if evidence is None:
            return (*base, replica)
        matcher = self._text_matcher()
        if product_words is None:
            product_words = matcher.product_words(evidence, brand, _product_key(match))[1]
        replica = matcher.replica_terms(replica, evidence, policy.replica_terms)
        return (*base, replica, *matcher.signals(evidence, brand, seller_authorized=authorized,
                                                 product_words=product_words))

    def _text_matcher(self) -> TextMatcher:
        """The photo-text matcher of the index's current generation."""
        generation = self._index.generation
        if self._text is None or self._text[0] != generation:
            matcher = TextMatcher(self._index.brands.values(), self._index.references,
                                  self._index.reference_texts, self._policy.text)
            self._text = (generation, matcher)
        return self._text[1]

    def _text_match(self, loaded: ListingImages, best: _Candidate | None, identity: TextIdentity,
                    package: _Candidate | None = None) -> Match:
        """The match of a listing that only its photo text ties to a brand (tier ``text``): the product its
        packaging shows among that brand's products (``package``, with its reference photo and geometry), else
        the one its words single out, shown beside its first reference photo; else the brand only."""
        if package is not None:
            return self._match(package, loaded, sig.TEXT_TIER)
        ref_id = self._text_matcher().first_reference.get(identity.product) if identity.product else None
        ref = self._index.references.get(ref_id) if ref_id is not None else None
        if ref is None:
            return Match(brand=identity.brand.name, product_id="", product_name="", reference_image="",
                         reference_label="", similarity=0.0, tier=sig.TEXT_TIER,
                         listing_image=str(loaded.paths[identity.photo]))
        price, currency = self._product_price(ref)
        same = best is not None and (best.hit.reference.brand, best.hit.reference.product_id) == (
            ref.brand, ref.product_id)
        return Match(brand=ref.brand, product_id=ref.product_id, product_name=ref.product_name,
                     reference_image=str(ref.image), reference_label=ref.label,
                     similarity=round(best.hit.similarity, 4) if best is not None and same else 0.0,
                     tier=sig.TEXT_TIER, listing_image=str(loaded.paths[identity.photo]),
                     reference_price=price, reference_currency=currency)

    def title_signals(self, listing: Listing, evidence: PhotoEvidence | None = None) -> tuple[sig.Signal, ...]:
        """The signals of a listing that matched no photo (:mod:`knockoff.decide.rule`): which catalog brand its
        title names, then its replica terms (in the title, and in the photos' text when it was read) and its
        price against every product of that brand (none when the title names no brand: nothing to check); then,
        when a photo's text could not be read, the photo-text signals ``unknown`` saying why (:func:`unread_text`)."""
        named = sig.title_names_brand(listing.title, self._index.brands.values())
        if not named.hit:
            return unread_text(evidence)
        brand, policy = named.details["brand"], self._policy
        prices = self._catalog_prices().by_brand.get(brand.casefold(), [])
        replica = sig.replica_terms(listing.title, policy.replica_terms)
        if evidence is not None:
            replica = self._text_matcher().replica_terms(replica, evidence, policy.replica_terms)
        return (
            named,
            replica,
            sig.price_implausible_for_brand(listing.price, listing.currency, brand, prices,
                                            ratio=policy.price_ratio, rates=policy.currency_rates),
            *unread_text(evidence),
        )

    def _identify(self, evidence: PhotoEvidence, checked: Sequence[_Candidate],
                  images: Sequence[Image.Image] = ()) -> tuple[TextIdentity | None, _Candidate | None, str | None]:
        """The brand (and product) the photo text names, for a listing no photo of which matched; with
        ``packaging_match`` on, the product its packaging shows among that brand's products (and that candidate),
        or no brand when the packaging favours another brand's (then the third item says so). The brand's
        products that no search or vote put on the shortlist are verified first (:meth:`_brand_candidates`): the
        comparison with other brands' packaging, and the choice among the brand's products, need their matches."""
        identity = self._text_matcher().identify(evidence)
        if identity is None or not self._policy.packaging_match:
            return identity, None, None
        checked = [*checked, *self._brand_candidates(identity, checked, images)]
        self._measure_print([c for c in checked if c.hit.reference.brand.casefold() == identity.brand.key], images)
        items = [c for c in checked if c.verification is not None]
        keys = [(product_key(c.hit.reference.brand, c.hit.reference.product_id), c.verification) for c in items]
        other = packaging_contradicts(identity, keys, self._policy.packaging)
        if other is not None:
            named = self._index.brand(other)
            return None, None, (f"the photo's text names {identity.brand.name}, but its packaging matches "
                                f"{named.name if named else other}'s better: not taken as {identity.brand.name}'s")
        identity = package_within_brand(identity, keys, self._policy.packaging)
        return identity, items[identity.package] if identity.package is not None else None, None

    def _brand_candidates(self, identity: TextIdentity, checked: Sequence[_Candidate],
                          images: Sequence[Image.Image]) -> list[_Candidate]:
        """The first reference photo of each product of the brand the text names that ``checked`` lacks (at most
        ``packaging.vote_top``, in product order), verified against the photo that shows the name, enlarged
        as the packaging match does."""
        if self.verifier is None or identity.photo >= len(images):
            return []
        seen = {(c.hit.reference.brand.casefold(), c.hit.reference.product_id) for c in checked}
        wanted = [ref_id for key, ref_id in sorted(self._text_matcher().first_reference.items())
                  if split_product_key(key)[0] == identity.brand.key and split_product_key(key) not in seen]
        out = []
        for ref_id in wanted[: self._policy.packaging.vote_top]:
            candidate = _Candidate(Hit(self._index.references[ref_id], ref_id, 0.0), identity.photo)
            self._verify([candidate], images, stop_at_copy=False)
            self._second_look([candidate], images, stop_at_copy=False)
            out.append(candidate)
        return out

    def _guessed(self, visual: sig.Signal, tier: str | None) -> tuple[sig.Signal, bool]:
        """Whether the match of ``visual`` is for a person to check, never a suspect, and the signal saying why:
        a guess on global similarity alone (:func:`~knockoff.decide.signals.guessed_copy`), or a packaging
        match that shows the brand but not which of its products (``brand_only``)."""
        if tier == sig.TEXT_TIER:
            return visual, False
        if visual.details.get("brand_only"):
            which = "which of the brand's products it is" + (", if any" if visual.details.get("scene") else "")
            return sig.Signal(visual.code, visual.state, f"{visual.message}; {which}, a person must tell (review, "
                              "not a suspect)", visual.details), True
        guessed = bool(sig.guessed_copy(tier, visual.details.get("unconfirmed"), near_copy=self._thresholds.near_copy,
                                        match=self._thresholds.match_floor(self.verifier is not None)))
        if guessed:
            visual = sig.Signal(visual.code, visual.state, f"{visual.message}; the match rests on global similarity "
                                "alone, so it is for a person to check (review), not a suspect", visual.details)
        return visual, guessed

    def _words_within_brand(self, evidence: PhotoEvidence, best: _Candidate,
                            checked: Sequence[_Candidate]) -> TextIdentity | None:
        """For a packaging match that shows ``best``'s brand but not which of its products (siblings alike, or its
        package won without singling out its product): the product the photo's words single out among the brand's
        products, when its packaging is one of those that match about as well as the best (within the packaging
        margin, passing the packaging checks; the best's own among them); else None."""
        from knockoff.match.verify import packaging_check

        brand = self._index.brand(best.hit.reference.brand) or Brand(best.hit.reference.brand)
        product, shown = self._text_matcher().product_words(evidence, brand)
        if product is None:
            return None
        settings, top = self._policy.packaging, best.verification.inliers
        alike = {product_key(c.hit.reference.brand, c.hit.reference.product_id) for c in checked
                 if c.verification is not None and packaging_check(c.verification, settings) is None
                 and c.hit.reference.brand.casefold() == brand.key
                 and (c.verification.inliers * settings.min_margin > top or top - c.verification.inliers < settings.min_lead)}
        if product not in alike:
            return None
        return TextIdentity(brand, product, shown, best.listing_image)

    def _verdict(self, listing: Listing, loaded: ListingImages, best: _Candidate | None,
                 evidence: PhotoEvidence | None = None, checked: Sequence[_Candidate] = ()) -> Verdict:
        skipped = tuple(loaded.skipped)
        identity, package, contradicted = None, None, None
        matched_visual = self._visual(best) if best is not None else None
        if evidence is not None and (matched_visual is None or matched_visual.details.get("tier") is None):
            identity, package, contradicted = self._identify(evidence, checked, loaded.images)
            if contradicted is not None and matched_visual is not None:
                matched_visual = sig.Signal(matched_visual.code, matched_visual.state,
                                            f"{matched_visual.message}; {contradicted}",
                                            {**matched_visual.details, "text_brand_not_taken": contradicted})
        if best is None and identity is None:
            signals = self.title_signals(listing, evidence)
            verdict, risk = rule.decide(None, signals, self._policy)
            visual = sig.Signal(sig.VISUAL_MATCH, "clear", "; ".join(
                ["no reference photo found", *([contradicted] if contradicted else [])]))
            reasons = _reasons(visual, signals, verdict)
            return Verdict(listing.listing_id, verdict, risk, None, reasons, signals, self.engine, listing, skipped)
        visual = matched_visual or sig.Signal(sig.VISUAL_MATCH, "clear", "no reference photo found")
        if package is not None and identity is not None:
            visual = _within_brand(visual, package, identity.brand.name)
        if best is not None and (best.same_brand or best.unproven) and evidence is not None and identity is None:
            identity = self._words_within_brand(evidence, best, checked)
            if identity is not None:
                visual = _words_name_product(visual, identity)
        tier = visual.details.get("tier")
        if identity is not None and evidence is not None:
            tier, match = sig.TEXT_TIER, self._text_match(loaded, best, identity, package)
            others = self._risk_signals(listing, match, evidence, identity.words)
            visual = _named_by_text(visual, identity.brand.name)
        elif best is not None:
            match = self._match(best, loaded, tier)
            others = (self._risk_signals(listing, match, evidence) if tier is not None
                      else self.title_signals(listing, evidence))
        visual, guessed = self._guessed(visual, tier)
        verdict, risk = rule.decide(tier, others, self._policy, guessed=guessed)
        return Verdict(listing.listing_id, verdict, risk, match, _reasons(visual, others, verdict, tier),
                       (visual, *others), self.engine, listing, skipped)


def _look_alike(visual: sig.Signal, best: _Candidate, failed: str, match: float) -> sig.Signal:
    """The visual signal of a packaging match that names the brand only because the listing photo looks like
    the official photo as a whole without being it (:meth:`Detector._looks_alike`)."""
    ref = best.hit.reference
    return sig.Signal(visual.code, visual.state, (
        f"photo shows the packaging design of {ref.brand}: {best.verification.inliers} keypoints on the listing's "
        f"packaging match official photo {ref.label}; and it looks like that photo "
        f"as a whole (global similarity {best.hit.similarity:.2f}, at or above {match:.2f}) without being that photo "
        f"({failed}): the same design photographed as the brand's own photos are, most often the official photo of "
        f"another {ref.brand} product (another colour scheme or small print) or a re-shot scene"), {**visual.details, "brand_only": True, "look_alike": True})


def _scene(visual: sig.Signal, best: _Candidate, why: str) -> sig.Signal:
    """The visual signal of a packaging match that names the brand only because the match shows a scene
    photographed anew, not a package (:func:`~knockoff.match.verify.scene_check`)."""
    ref = best.hit.reference
    return sig.Signal(visual.code, visual.state, (
        f"photo matches official photo {ref.label} of {ref.brand} ({best.verification.inliers} keypoints, global "
        f"similarity {best.hit.similarity:.2f}), but not as a package: {why}"), {**visual.details, "brand_only": True, "scene": why})


def _unproven(visual: sig.Signal, best: _Candidate, why: str) -> sig.Signal:
    """The visual signal of a packaging match that names the brand only because it does not single out its
    product from a sibling sharing the brand's design (:func:`~knockoff.match.siblings.product_check`)."""
    ref = best.hit.reference
    match = best.verification
    return sig.Signal(visual.code, visual.state, (
        f"photo shows the packaging design of {ref.brand}: {match.inliers} keypoints on the listing's packaging "
        f"match official photo {ref.label} of {ref.product_name or ref.product_id} ({round(100 * match.inlier_ratio)} "
        f"% of the tentative matches agree under one transform); but not that it is that product: {why}, so the "
        f"part that tells {ref.brand}'s products apart (flavour name or picture, variant band, colour) may differ "
        f"from that official photo's, as it does on another {ref.brand} product missing from the catalog (global "
        f"similarity {best.hit.similarity:.2f})"),
        {**visual.details, "brand_only": True, "unproven": why})


def _brand_only(candidate: _Candidate) -> bool:
    """Whether the packaging match ``candidate`` names the brand only (not which product)."""
    return candidate.same_brand or candidate.look_alike or candidate.scene is not None or candidate.unproven is not None


def _words_name_product(visual: sig.Signal, identity: TextIdentity) -> sig.Signal:
    """The visual signal of a listing whose packaging shows a brand but not which of its products, when the
    photo's words name one of the products that match alike: not a match by the photo alone (no tier)."""
    return sig.Signal(sig.VISUAL_MATCH, "clear",
                      f"{visual.message}; the photo's words ({', '.join(identity.words)}) name which",
                      {**visual.details, "tier": None, "within_brand": identity.brand.name})


def _with_skipped(verdict: Verdict, loaded: ListingImages) -> Verdict:
    """``verdict`` with a reason for each photo of the listing that could not be read, saying why (its path alone
    was in ``skipped_images``; the why only in the log), and for what was left unchecked (:attr:`ListingImages.notes`:
    later frames of an animated file, which may show what the first does not; photos over :data:`MAX_PHOTOS`)."""
    if not loaded.problems and not loaded.notes:
        return verdict
    skipped = (Reason("SKIPPED_IMAGE", f"photo not checked: {problem}") for problem in loaded.problems)
    notes = (Reason(code, note) for code, note in loaded.notes)
    return replace(verdict, reasons=(*verdict.reasons, *skipped, *notes))


def _named_by_text(visual: sig.Signal, brand: str) -> sig.Signal:
    """The visual signal of a listing that only its photo's text ties to ``brand`` (tier ``text``): it says so,
    so that a suspect's first reason is not a bare "no reference photo is close enough"."""
    if "within_brand" in visual.details:  # it says already how the text and the packaging name the product
        return visual
    return sig.Signal(visual.code, visual.state, f"{visual.message}; the text read in its photo names {brand}",
                      visual.details)


def _is_copy(candidate: _Candidate) -> bool:
    return candidate.verification is not None and bool(candidate.verification.verified)


def _within_brand(visual: sig.Signal, package: _Candidate, brand: str) -> sig.Signal:
    """The visual signal of a listing whose product the packaging match found among the products of the brand
    its photo text names (:func:`~knockoff.decide.text_evidence.package_within_brand`): not a match by the
    photo alone (clear, no tier), but it says which official photo the packaging matches."""
    label = package.hit.reference.label
    shows = package.verification.describe_packaging(label)
    return sig.Signal(sig.VISUAL_MATCH, "clear",
                      f"{visual.message}; among the products of {brand}, which the photo's text names: {shows}",
                      {**visual.details, "tier": None, "within_brand": brand, "package_reference": label})


def _product_key(match: Match) -> str | None:
    return product_key(match.brand, match.product_id) if match.product_id else None


def _reasons(visual: sig.Signal, others: Sequence[sig.Signal], verdict: str,
             tier: str | None = None) -> tuple[Reason, ...]:
    """The visual match first, then what made the verdict: the risk signals that hit, and for a review the
    brand the title names (no photo match) or the signals that could not be checked (a match). A listing that
    only its photo text ties to a brand (tier ``text``) says so second, whatever the signal's state."""
    reasons = [Reason(visual.code, visual.message)]
    if tier == sig.TEXT_TIER:
        named = [s for s in others if s.code in sig.TEXT_RISK_CODES and s.details.get("mentions")]
        reasons += [Reason(s.code, s.message) for s in named[:1] if not s.hit]
    elif not visual.hit:  # no photo match: what the title says counts only when it makes a review
        reasons += [Reason(s.code, s.message) for s in others if s.hit and verdict == "review"]
        reasons += [Reason(s.code, s.message) for s in others if s.details.get("unreadable")][:1]  # text unknown
        return tuple(reasons)
    reasons += [Reason(s.code, s.message) for s in others if s.hit]
    if verdict == "review":  # one reason a cause ("the listing has no title" leaves two signals unchecked)
        unchecked: dict[str, str] = {}
        for s in others:
            if s.state == "unknown":
                unchecked.setdefault(s.message, s.code)
        reasons += [Reason(code, f"not checked: {message}") for message, code in unchecked.items()]
    return tuple(reasons)


def _why_not_stored(shortlist: Any, stores_features: bool) -> str:
    """Why the index's stored keypoint shortlist cannot serve a policy, in words."""
    if shortlist is not None:
        return (f"the policy's shortlist settings differ from those the index's shortlist was built with "
                f"({shortlist.params}; `knockoff index build --policy` builds it with the policy's)")
    if not stores_features:
        return "the index stores no keypoints (built without OpenCV)"
    return "the index was saved before indexes stored their keypoint shortlist"
