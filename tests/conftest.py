"""Shared fixtures: small images and catalogs made on the fly."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.fixture(autouse=True, scope="session")
def _index_stamps_apart(tmp_path_factory: pytest.TempPathFactory):
    """The file stamps of the indexes tests load (knockoff.match.stamps) go into the test session's own folder,
    not the user's cache (subprocesses inherit it)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("KNOCKOFF_STAMP_DIR", str(tmp_path_factory.mktemp("index-stamps")))
    yield
    patch.undo()


def textured_image(seed: int, size: tuple[int, int] = (256, 256)) -> Image.Image:
    """A distinct, deterministic picture: random rectangles, ellipses and lines on a colored background."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(image)
    w, h = size
    for _ in range(14):
        x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
        x1, y1 = x0 + int(rng.integers(15, w // 2)), y0 + int(rng.integers(15, h // 2))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = rng.integers(0, 3)
        if shape == 0:
            draw.rectangle((x0, y0, x1, y1), fill=color)
        elif shape == 1:
            draw.ellipse((x0, y0, x1, y1), fill=color)
        else:
            draw.line((x0, y0, x1, y1), fill=color, width=int(rng.integers(2, 8)))
    return image


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def make_image(tmp_path: Path):
    def _make(name: str, seed: int, size: tuple[int, int] = (256, 256), fmt: str | None = None) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        textured_image(seed, size).save(path, format=fmt)
        return path

    return _make


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    """Two brands, three products, four official images."""
    root = tmp_path / "refs"
    (root / "acme").mkdir(parents=True)
    (root / "globex").mkdir(parents=True)
    for name, seed in (("acme/tote_front.png", 1), ("acme/tote_side.png", 2), ("acme/wallet.png", 3),
                       ("globex/watch.png", 4)):
        textured_image(seed).save(root / name)
    write_csv(root / "brands.csv", ["brand", "aliases", "authorized_sellers"],
              [["Acme", "Akme;Acme Co", "acme_store;bestbags"], ["Globex", "", ""]])
    write_csv(root / "references.csv", ["brand", "product_id", "product_name", "image", "price", "currency"], [
        ["Acme", "tote", "Acme Tote", "acme/tote_front.png", "399", "USD"],
        ["Acme", "tote", "Acme Tote", "acme/tote_side.png", "399", "USD"],
        ["Acme", "wallet", "Acme Wallet", "acme/wallet.png", "150", "USD"],
        ["Globex", "watch", "Globex Watch", "globex/watch.png", "1200", "EUR"],
    ])
    return root


def _register_pixel_embedder() -> None:
    """Register ``test-pixels``: a tiny embedder (the thumbnail, centred and normalized) for index tests."""
    from knockoff.embedders.base import Embedder, l2_normalize, register_embedder

    class _Pixels(Embedder):
        kind = "test-pixels"
        input_size = 8

        def __init__(self, size: int = 8):
            self.size = size

        @property
        def name(self) -> str:
            return f"test-pixels:{self.size}"

        @property
        def dim(self) -> int:
            return self.size * self.size * 3

        def embed(self, images):
            rows = [np.asarray(im.resize((self.size, self.size)), dtype=np.float32).ravel() for im in images]
            if not rows:
                return np.zeros((0, self.dim), np.float32)
            arr = np.stack(rows)
            return l2_normalize(arr - arr.mean(axis=1, keepdims=True))

    register_embedder("test-pixels", lambda arg=None, **kw: _Pixels(int(arg or 8)), "test only")


_register_pixel_embedder()
