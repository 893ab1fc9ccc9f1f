"""The fast inference paths of the clip engine, on a tiny random model: agreement with fp32, clean fallbacks."""

from __future__ import annotations

import copy
import json
import logging

import numpy as np
import pytest
from PIL import Image

open_clip = pytest.importorskip("open_clip")
torch = pytest.importorskip("torch")

from knockoff.embedders import clip_fast, create_embedder  # noqa: E402
from knockoff.errors import EmbedderError  # noqa: E402

TINY = "TinyFastTest"
TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 1000, "width": 32, "heads": 2, "layers": 1},
}
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    from safetensors.torch import save_file

    cfg_dir = tmp_path_factory.mktemp("open_clip_cfg_fast")
    (cfg_dir / f"{TINY}.json").write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(cfg_dir / f"{TINY}.json")
    torch.manual_seed(0)
    model = open_clip.create_model(TINY).eval()
    path = tmp_path_factory.mktemp("ckpt_fast") / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def tiny_visual(tiny_ckpt):
    model = open_clip.create_model(TINY, pretrained=str(tiny_ckpt)).eval()
    return model.visual


@pytest.fixture(scope="module")
def batch(tiny_visual):
    preprocess = open_clip.image_transform(64, is_train=False)
    return torch.stack([preprocess(im) for im in clip_fast.probe_images(6, 64, seed=3)])


def _fp32(visual, batch):
    with torch.inference_mode():
        return visual(batch).numpy()


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_fast_paths_agree_with_fp32(tiny_visual, batch, precision, caplog):
    caplog.set_level(logging.ERROR)  # bf16 on a CPU without native support logs a warning; fine here
    runner = clip_fast.prepare(copy.deepcopy(tiny_visual), CPU, precision)
    assert runner.precision == precision and runner.agreement is None
    cos = clip_fast.cosine_rows(runner(batch), _fp32(tiny_visual, batch))
    assert cos.min() >= clip_fast.AGREEMENT_MIN


def test_linearized_attention_is_exact(tiny_visual, batch):
    visual = copy.deepcopy(tiny_visual)
    assert clip_fast.linearize_attention(visual) == 2  # one per layer
    np.testing.assert_allclose(_fp32(visual, batch), _fp32(tiny_visual, batch), atol=1e-5)


def test_int8_quantizes_attention_projections_too(tiny_visual):
    runner = clip_fast.prepare(copy.deepcopy(tiny_visual), CPU, "int8")
    names = {type(m).__name__ for m in runner.module.modules()}
    assert "MultiheadAttention" not in names
    assert not any(type(m) is torch.nn.Linear for m in runner.module.modules())


def test_int8_vector_barely_depends_on_batch(tiny_visual, batch):
    runner = clip_fast.prepare(copy.deepcopy(tiny_visual), CPU, "int8")
    alone = runner(batch[:1])
    together = runner(batch)[:1]
    assert clip_fast.cosine_rows(alone, together).min() > 0.999


def test_auto_keeps_the_fast_path_only_when_it_agrees(tiny_visual, batch, monkeypatch):
    monkeypatch.setattr(clip_fast, "cpu_has_native_bf16", lambda: False)
    runner = clip_fast.prepare(copy.deepcopy(tiny_visual), CPU, "auto", probe=batch)
    expected = "int8" if clip_fast.int8_available() else "fp32"
    assert runner.precision == expected
    if expected == "int8":
        assert runner.agreement >= clip_fast.AGREEMENT_MIN
    monkeypatch.setattr(clip_fast, "AGREEMENT_MIN", 1.01)  # impossible: auto must fall back to exact fp32
    runner = clip_fast.prepare(copy.deepcopy(tiny_visual), CPU, "auto", probe=batch)
    assert runner.precision == "fp32" and runner.agreement is None
    np.testing.assert_allclose(runner(batch), _fp32(tiny_visual, batch), atol=1e-6)


@pytest.mark.parametrize(
    ("native_bf16", "int8", "expected"), [(True, True, "bf16"), (False, True, "int8"), (False, False, "fp32")]
)
def test_auto_candidate_follows_cpu_support(monkeypatch, native_bf16, int8, expected):
    monkeypatch.setattr(clip_fast, "cpu_has_native_bf16", lambda: native_bf16)
    monkeypatch.setattr(clip_fast, "int8_available", lambda: int8)
    assert clip_fast.auto_candidate(CPU) == expected
    assert clip_fast.auto_candidate(torch.device("cuda")) == "fp16"


def test_unsupported_precisions_fail_cleanly(tiny_visual, monkeypatch):
    with pytest.raises(EmbedderError, match="CUDA"):
        clip_fast.prepare(copy.deepcopy(tiny_visual), CPU, "fp16")
    monkeypatch.setattr(clip_fast, "int8_available", lambda: False)
    with pytest.raises(EmbedderError, match="int8"):
        clip_fast.prepare(copy.deepcopy(tiny_visual), CPU, "int8")
    with pytest.raises(EmbedderError, match="CPU only"):
        clip_fast.check_precision("int8", torch.device("cuda"))


def test_bf16_without_native_support_warns(monkeypatch, caplog):
    monkeypatch.setattr(clip_fast, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="knockoff.embedders.clip_fast"):
        clip_fast.check_precision("bf16", CPU)
    assert "emulated" in caplog.text


def test_embedder_auto_precision_end_to_end(tiny_ckpt, monkeypatch):
    monkeypatch.setattr(clip_fast, "cpu_has_native_bf16", lambda: False)
    name = f"clip:{TINY}/local"
    fast = create_embedder(name, checkpoint=tiny_ckpt)  # precision="auto"
    exact = create_embedder(name, checkpoint=tiny_ckpt, precision="fp32")
    assert fast.precision in ("int8", "fp32") and exact.precision == "fp32"
    assert fast.settings() == exact.settings()  # an index built with one is searchable with the other
    images = [Image.new("RGB", (80, 60), (10, 200, 40)), *clip_fast.probe_images(3, 96, seed=7)]
    a, b = fast.embed(images), exact.embed(images)
    assert a.dtype == np.float32 and a.shape == (4, 32)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert clip_fast.cosine_rows(a, b).min() >= clip_fast.AGREEMENT_MIN


def test_cpu_facts_do_not_crash():
    assert isinstance(clip_fast.cpu_model(), str) and clip_fast.cpu_model()
    assert isinstance(clip_fast.cpu_has_native_bf16(), bool)
    assert isinstance(clip_fast.cpu_flags(), frozenset)
