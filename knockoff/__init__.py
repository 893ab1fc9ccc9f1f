"""knockoff: find counterfeit product listings from their photos.

Importing this package is light: torch, open_clip, faiss and OpenCV are imported only when an embedder, an
index or the verifier is first used.
"""

from knockoff.catalog.readers import Brand, Catalog, LabeledListing, Listing, ReferenceImage, read_listings
from knockoff.decide.detector import Detector
from knockoff.decide.rule import needs_person
from knockoff.decide.signals import Signal
from knockoff.decide.verdict import Match, Reason, Verdict, read_verdicts
from knockoff.embedders.base import Embedder, create_embedder, list_embedders, register_embedder
from knockoff.errors import (
    CatalogError,
    ConfigError,
    EmbedderError,
    ImageError,
    IndexCorruptError,
    IndexMismatchError,
    IndexStateError,
    KnockoffError,
    LabeledSetError,
    OutputExistsError,
    PolicyError,
    RealDataMissingError,
    ReferenceIndexError,
    ReportError,
    ScanError,
    ResultError,
    WeightsNotFoundError,
)
from knockoff.catalog.images import iter_image_files, load_image
from knockoff.match.index import Hit, ReferenceIndex, build_index
from knockoff.decide.policy import EngineThresholds, Policy

__version__ = "0.1.0"

__all__ = [
    "Brand",
    "Catalog",
    "CatalogError",
    "ConfigError",
    "Detector",
    "Embedder",
    "EmbedderError",
    "EngineThresholds",
    "Hit",
    "ImageError",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexStateError",
    "KnockoffError",
    "LabeledListing",
    "LabeledSetError",
    "Listing",
    "Match",
    "OutputExistsError",
    "Policy",
    "PolicyError",
    "RealDataMissingError",
    "Reason",
    "ReferenceImage",
    "ReferenceIndex",
    "ReferenceIndexError",
    "ReportError",
    "ScanError",
    "ResultError",
    "Signal",
    "Verdict",
    "WeightsNotFoundError",
    "__version__",
    "build_index",
    "create_embedder",
    "iter_image_files",
    "list_embedders",
    "load_image",
    "needs_person",
    "read_listings",
    "read_verdicts",
    "register_embedder",
]
