"""Which of a brand's alike products a new photo of its package shows: by how much of each official photo's small
print it reproduces.

A brand's products often share one package design: a new photo of one of them matches the official photo of
each about equally well by keypoints (:func:`knockoff.match.verify.pick_same_package` finds no product with the
packaging margin, and :func:`~knockoff.match.verify.pick_same_brand` names the brand only). What differs is the
print the design leaves to each product: the flavour or variant name, its picture, a fat-content band. Aligned by
each match's own transform, the listing photo reproduces the small textured cells of its own product's official
photo (``GeometricMatch.detail_agreement``, measured on demand for a match that passes the packaging checks by
:meth:`~knockoff.match.verify.GeometricVerifier.with_print`) better
than those of a sibling, whose variant print is other pixels at the same place.

:data:`DETAIL_LEAD`: the product's detail agreement must lead every other alike product's by 0.12 (an eighth of
the official photo's small textured cells): above the largest lead a wrong product had over the others in 200
train store photos, 0.095. Measured on grocerystore *train* store photos (val held out;
``benchmarks/bench_grocery_print.py``: every product of the photo's brand matched, enlarged as the packaging match
does): of the 100 photos ``bench_grocery_fusion.py`` samples, 26 had their brand's products alike; a lead of 0.12
named the right product for 8 of them and a sibling for none (0.1: 11 and 0; 0.08: 15 and 1; 0.05: 16 and 1; 0.03:
20 and 2). On a second, disjoint sample of 104 train photos (``--seed 7 --train 120 --exclude-first``), 26 alike:
0.12 named 13 right and no sibling (0.1: 14 and 0; 0.05: 19 and 1; 0.03: 21 and 3)
(``benchmarks/results/grocery_print{,.disjoint}.md``). The 9 wrong leaders of the 52 led by 0.001-0.076, and by 0.095
where the photo's own product's match failed the packaging checks (its package was not among those compared): Alpro's
fresh and shelf soy milk and soyghurts (one print but a word or a small fruit picture), Yoggi's two yoghurts, Arla's
sour creams. Below the lead the brand only is named, as before.

:func:`product_check`: a package that wins (by its keypoints, or by this lead) names its product only when the
listing reproduces at least ``PackagingSettings.min_product_detail`` (0.6) of that official photo's small
textured cells. A sibling *missing from the catalog* has no rival to lose to: its new photo matches the one
official photo of the design the catalog has, by the margin, and was named as that product. What it cannot do is
reproduce the print that tells the products apart. Measured on grocerystore *train* store photos (val held out),
every product-named packaging match with the text off: the store photos of products missing from the index
(``bench_sibling_verdicts.py --packaging --store 3``, 40 wrong products named) reproduce p50 0.47, p90 0.57 of
the sibling's small print, and only Alpro's fresh and shelf soy milk (one print, one word apart) reach 0.6
(0.63-0.67); 200 train photos with every product indexed (140 right products named) reproduce p25 0.55, p50 0.63
of their own. 0.6 sits above every sibling's photo but those twins' and keeps 89 of the 140 (0.64; 0.57: 101
and 4 wrong, 0.55: 104 and 9, 0.5: 113 and 15): a product must then be told by another evidence (the words
on the package), else the brand is named. Measured and set aside (lower separation, area under the ROC curve
between the right products' and the siblings' photos: the detail agreement 0.82): the worst region of a 2x2 to
4x4 grid over the official photo, in detail or in colour (0.5-0.67: a store photo of the product itself loses
regions to glare, curvature and occlusion), the share of the face's grid cells holding an inlier (0.76), the
inliers' spread (0.79), a misalignment of 2-4 pixels forgiven (no gain).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from knockoff.match.verify import GeometricMatch, PackagingSettings, packaging_check

__all__ = ["DETAIL_LEAD", "pick_by_print", "product_check"]

#: the share of the official photo's small textured cells by which the product's detail agreement must lead
#: every other alike product's (see the module's docstring)
DETAIL_LEAD = 0.12


def pick_by_print(items: Sequence[tuple[Any, GeometricMatch]], settings: PackagingSettings,
                  lead: float = DETAIL_LEAD) -> int | None:
    """Which of ``items`` ((product key, match of the listing photo with one of its official photos), all of one
    brand) shows the listing's product by its small print: among the products whose best match passes the
    packaging checks within the packaging margin of the brand's best match (``min_margin`` times or
    ``min_lead`` inliers: alike, as no single product won), the one whose detail agreement leads every other's
    by ``lead``. ``None`` when fewer than two products are alike, when a detail agreement of one of them was not
    measured, or when a match of the brand that fails the checks has more inliers than the best passing one (the
    strongest package in the photo is not one the checks accept: a shelf behind the subject)."""
    best: dict[Any, int] = {}
    for i, (key, match) in enumerate(items):
        if packaging_check(match, settings) is None and (key not in best or match.inliers > items[best[key]][1].inliers):
            best[key] = i
    if len(best) < 2:
        return None
    top = max(items[i][1].inliers for i in best.values())
    if any(not match.mirrored and match.inliers > top for _, match in items):
        return None
    alike = [i for i in best.values()
             if items[i][1].inliers * settings.min_margin > top or top - items[i][1].inliers < settings.min_lead]
    details = [items[i][1].detail_agreement for i in alike]
    if len(alike) < 2 or any(d is None for d in details):
        return None
    ranked = sorted(((float(d or 0.0), i) for d, i in zip(details, alike)), key=lambda pair: -pair[0])
    (first, chosen), (second, _) = ranked[0], ranked[1]
    return chosen if first - second >= lead else None


def product_check(match: GeometricMatch, settings: PackagingSettings) -> str | None:
    """Why the packaging match ``match`` shows its official photo's brand design but not that it is *this*
    product (``None``: it does): a product is named only on evidence a sibling's photo would not give. A brand's
    products share one package design and differ in a part of its face (the flavour name and picture, a
    variant band, a colour), so a new photo of a sibling missing from the catalog matches this official photo's
    keypoints on the shared design as well as the product's own photo would, yet cannot reproduce the part that
    tells the products apart. Hence the share of the official photo's small textured cells the listing
    reproduces once aligned (``detail_agreement``, measured by :meth:`~knockoff.match.verify.GeometricVerifier.
    with_print`) must reach ``settings.min_product_detail``. A proven copy needs no more; a detail agreement that
    could not be measured is no evidence."""
    minimum = settings.min_product_detail
    if match.verified or minimum <= 0:
        return None
    detail = match.detail_agreement
    if detail is None:
        return "its small print could not be compared with the official photo's (too little of it in view)"
    if detail < minimum:
        where = f", least in its {match.detail_weakest} part" if match.detail_weakest else ""
        return (f"only {round(100 * detail)} % of the official photo's small print agrees once aligned{where}, "
                f"below {round(100 * minimum)} %")
    return None
