"""A custom policy: stricter thresholds, a lower price bar, exchange rates and an extra replica term."""

import tempfile
from dataclasses import replace
from pathlib import Path

import knockoff
from knockoff.evaluate.synthetic import make_labeled_set

work = Path(tempfile.mkdtemp(prefix="knockoff-policy-"))
set_dir = make_labeled_set(work / "set", seed=3).root
index = knockoff.build_index(knockoff.Catalog.from_dir(set_dir), embedder="auto")
engine = index.embedder.kind

default = knockoff.Policy()
base = default.thresholds_for(engine)
strict = replace(
    default.with_thresholds(engine, replace(base, near_copy=min(1.0, base.near_copy + 0.03))),
    price_ratio=0.4,  # flag prices below 40 % of the reference price (default 50 %)
    currency_rates={"USD": 1.0, "EUR": 1.08, "GBP": 1.27},  # compare prices across currencies
).with_extra_replica_terms("factory seconds")
strict.save(work / "strict-policy.json")  # `knockoff scan --policy strict-policy.json` loads it

title = "Factory seconds tote, same as the shop"
listing = knockoff.read_listings(set_dir / "listings.csv")[0].listing
listing = replace(listing, title=title)
for name, policy in (("default", default), ("strict", strict)):
    verdict = knockoff.Detector(index, policy).check(listing)
    print(f"{name:>7}: {verdict.verdict} (risk {verdict.risk:.2f})")
    for reason in verdict.reasons:
        print(f"         - {reason.message}")
