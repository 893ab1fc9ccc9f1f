"""FastPreprocess equals open_clip's eval transform (to float32 rounding) on the shapes and modes it covers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from knockoff.embedders.preprocess import FastPreprocess

open_clip = pytest.importorskip("open_clip")
torch = pytest.importorskip("torch")


def _image(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (6, 6, 4), dtype=np.uint8)
    image = Image.fromarray(low, "RGBA").resize(size, Image.Resampling.BICUBIC)
    noise = rng.integers(-20, 20, (size[1], size[0], 4))
    image = Image.fromarray(np.clip(np.asarray(image, np.int16) + noise, 0, 255).astype(np.uint8), "RGBA")
    return image if mode == "RGBA" else image.convert(mode)


SIZES = [(400, 300), (300, 400), (224, 224), (225, 224), (1601, 1199), (97, 61), (224, 500), (333, 333)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_shortest_matches_open_clip(size, interpolation):
    reference = open_clip.image_transform(224, is_train=False, interpolation=interpolation, resize_mode="shortest")
    fast = FastPreprocess(224, interpolation=interpolation)
    images = [_image(size, seed=s) for s in range(3)]
    expected = torch.stack([reference(im) for im in images]).numpy()
    got = fast.batch(images)
    assert got.shape == expected.shape and got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_other_modes_match_open_clip(mode):
    reference = open_clip.image_transform(64, is_train=False)
    image = _image((90, 70), mode=mode)
    np.testing.assert_allclose(FastPreprocess(64).batch([image])[0], reference(image).numpy(), atol=1e-6, rtol=0)


def test_squash_and_custom_normalization_match_open_clip():
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    reference = open_clip.image_transform(48, is_train=False, mean=mean, std=std, resize_mode="squash")
    fast = FastPreprocess.from_cfg({"size": (48, 48), "mean": mean, "std": std, "resize_mode": "squash"})
    image = _image((120, 50))
    np.testing.assert_allclose(fast.batch([image])[0], reference(image).numpy(), atol=1e-6, rtol=0)


def test_from_cfg_of_a_model():
    cfg = dict(open_clip.create_model("ViT-B-32", pretrained=None).visual.preprocess_cfg)
    fast = FastPreprocess.from_cfg(cfg)
    assert fast is not None and fast.size == 224 and "bicubic" in repr(fast)


@pytest.mark.parametrize(
    "cfg",
    [{"size": (224, 256)}, {"size": 224, "resize_mode": "longest"}, {"size": 224, "interpolation": "lanczos"},
     {"size": 224, "mode": "L"}],
)
def test_from_cfg_refuses_what_it_does_not_cover(cfg):
    assert FastPreprocess.from_cfg(cfg) is None


def test_empty_batch_and_out_buffer():
    fast = FastPreprocess(32)
    assert fast.batch([]).shape == (0, 3, 32, 32)
    out = np.empty((2, 3, 32, 32), np.float32)
    assert fast.batch([_image((40, 50)), _image((50, 40))], out=out) is out


def test_bad_arguments():
    with pytest.raises(ValueError):
        FastPreprocess(224, interpolation="lanczos")
    with pytest.raises(ValueError):
        FastPreprocess(224, resize_mode="longest")
    with pytest.raises(ValueError):
        FastPreprocess(0)
