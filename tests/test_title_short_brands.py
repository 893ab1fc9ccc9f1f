"""Titles naming brands of one or two characters: only as separate words written in the catalog's case, not next
to a number ("2 x 500ml milk" once named a catalog brand "X": BRAND_MISUSE, TITLE_NAMES_BRAND, a review)."""

from __future__ import annotations

import pytest

from knockoff.catalog.readers import Brand
from knockoff.decide.signals import brand_misuse, find_brand_mention, is_short_name, title_names_brand

X = Brand("X")
LG = Brand("LG", aliases=("LG Electronics",))
THREE_M = Brand("3M")


@pytest.mark.parametrize("title, brand, word", [
    ("LG OLED TV", LG, "LG"),
    ("X hoodie", X, "X"),
    ("hoodie by X", X, "X"),
    ("LG 55 inch OLED", LG, "LG"),          # a two-letter name before a number: a model size, still LG
    ("(LG) monitor", LG, "LG"),
    ("LG's best TV", LG, "LG"),
    ("new X, black", X, "X"),
    ("3M tape, 2 rolls", THREE_M, "3M"),
    ("lg electronics oled", LG, "lg electronics"),  # the long alias is matched as before, any case
])
def test_a_short_name_written_as_the_catalog_writes_it_is_named(title, brand, word):
    assert find_brand_mention(title, brand) == ("exact", word)


@pytest.mark.parametrize("title, brand", [
    ("2 x 500ml milk", X),
    ("2 X 500ml milk", X),
    ("500 x 300 mm poster", X),
    ("milk x 2", X),
    ("milk X 2", X),
    ("x2 pack", X),
    ("3x pack", X),
    ("2x500ml", X),
    ("x hoodie", X),                        # not the catalog's case
    ("X-ray film", X),
    ("lg oled tv", LG),
    ("Lg oled tv", LG),
    ("2 LG", LG),                            # after a number: a quantity or a measure
    ("LGX monitor", LG),
    ("pack of 2, 3M", THREE_M),
])
def test_a_short_name_by_chance_is_not_named(title, brand):
    assert find_brand_mention(title, brand) is None


@pytest.mark.parametrize("name, short", [("X", True), ("LG", True), ("3M", True), ("A B", True), ("H&M", True),
                                         ("Ærø", False), ("Acme", False), ("Abc", False)])
def test_is_short_name(name, short):
    assert is_short_name(name) is short


def test_a_quantity_names_no_brand_x_in_the_title_signals():
    assert title_names_brand("2 x 500ml milk", [X, LG]).state == "clear"
    assert title_names_brand("X hoodie 1:1", [X, LG]).state == "hit"
    misuse = brand_misuse("2 x 500ml milk", X, seller_authorized=False)
    assert misuse.state == "hit" and misuse.details["how"] == "hidden"  # the photo matched X; the title does not name it
    assert brand_misuse("X hoodie", X, seller_authorized=False).details["how"] == "unauthorized-name"
