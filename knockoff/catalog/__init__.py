"""Stage 1, what users write: brands, reference products, listings, labeled sets, and safe image loading."""

from knockoff.catalog.images import iter_image_files, load_image, looks_like_image
from knockoff.catalog.readers import (
    Brand,
    Catalog,
    LabeledListing,
    Listing,
    ReferenceImage,
    listings_from_images,
    read_brands,
    read_listings,
    read_references,
)

__all__ = [
    "Brand",
    "Catalog",
    "LabeledListing",
    "Listing",
    "ReferenceImage",
    "iter_image_files",
    "listings_from_images",
    "load_image",
    "looks_like_image",
    "read_brands",
    "read_listings",
    "read_references",
]
