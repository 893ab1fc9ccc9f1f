"""Quick start: index a brand's catalog, then check listings one by one.

Runs offline as it stands: it generates a small catalog and listings first (knockoff.evaluate.synthetic).
Replace `set_dir` with your own folder of brands.csv + references.csv + images.
"""

import tempfile
from pathlib import Path

import knockoff
from knockoff.evaluate.synthetic import make_labeled_set

work = Path(tempfile.mkdtemp(prefix="knockoff-quickstart-"))
set_dir = make_labeled_set(work / "brand-refs", seed=1).root

catalog = knockoff.Catalog.from_dir(set_dir)  # brands.csv + references.csv + images
index = knockoff.build_index(catalog, embedder="auto")  # clip when its weights exist, else perceptual
index.save(work / "brand.index")
print(f"indexed {len(index)} official images with the {index.embedder.name} engine")

detector = knockoff.Detector(knockoff.ReferenceIndex.load(work / "brand.index"))
for labeled in knockoff.read_listings(set_dir / "listings.csv")[:6]:
    verdict = detector.check(labeled.listing)
    print(f"{verdict.listing_id}: {verdict.verdict} (risk {verdict.risk:.2f}); labeled {labeled.label}")
    for reason in verdict.reasons:
        print(f"    - {reason.message}")
