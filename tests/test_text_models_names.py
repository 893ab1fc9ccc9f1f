"""The int8 text models keep Latin, Greek and Cyrillic letters only: a catalog name they cannot write is read with
the shipped models instead, never silently missed."""

from __future__ import annotations

import logging

import pytest
from PIL import Image

from knockoff.catalog.readers import Brand, ReferenceImage
from knockoff.decide.policy import TextSettings
from knockoff.decide.text_evidence import TextMatcher
from knockoff.match import index as index_module
from knockoff.match.ocr_derive import int8_reads
from knockoff.match.text import PhotoText, TextReadSettings, settings_for_names


@pytest.mark.parametrize(("text", "expected"), [
    ("Acme", True), ("Ærø Mejeri", True), ("Ωmega", True), ("Москва", True), ("Acme™ 100 €", True),
    ("", True), ("日清", False), ("Acme 日清", False), ("삼성", False), ("עלית", False),
])
def test_int8_reads(text, expected):
    assert int8_reads(text) is expected


@pytest.mark.parametrize(("models", "names", "expected"), [
    ("int8", ["Acme", "Ærø"], "int8"),
    ("int8", ["Acme", "日清"], "full"),
    ("full", ["日清"], "full"),
    ("int8", [], "int8"),
])
def test_settings_for_names(models, names, expected):
    assert settings_for_names(TextReadSettings(models=models), names).models == expected


def test_an_unwritable_name_is_logged_once(caplog):
    name = "未写名"  # unique to this test: the warning is given once per process and name
    with caplog.at_level(logging.WARNING, logger="knockoff.match.text"):
        settings_for_names(TextReadSettings(), [name])
        settings_for_names(TextReadSettings(), [name])
    assert sum(name in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(("brands", "expected"), [
    ((Brand("Acme"), Brand("Norda", aliases=("Nörda",))), "int8"),
    ((Brand("Acme"), Brand("Nissin", aliases=("日清",))), "full"),
])
def test_the_matcher_reads_with_models_that_write_every_brand_name(brands, expected):
    matcher = TextMatcher(brands, {}, None, TextSettings())
    assert matcher.settings.read.models == expected
    assert matcher.settings.match == TextSettings().match


def test_reference_text_is_read_with_models_that_write_its_names(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(index_module, "read_text",
                        lambda image, settings=None: seen.append(settings.models) or PhotoText((), "test"))
    for number, (brand, product) in enumerate([("Acme", "Scarf"), ("Nissin", "日清 Cup Noodle")]):
        Image.new("RGB", (64, 64), (number * 90, 40, 40)).save(tmp_path / f"{number}.png")
    refs = [ReferenceImage("Acme", "scarf", "Scarf", tmp_path / "0.png"),
            ReferenceImage("Nissin", "cup", "日清 Cup Noodle", tmp_path / "1.png")]

    class _Flat:
        dim = 4

        def reference_views(self, image):
            return [image]

        def embed(self, views):
            return [[1.0, 0.0, 0.0, 0.0] for _ in views]

    prepared = index_module.prepare_batch(_Flat(), refs, features=False, texts=True)
    assert seen == ["int8", "full"] and len(prepared.texts) == 2
