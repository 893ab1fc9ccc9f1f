"""The clip engine, offline: a tiny open_clip model saved to a checkpoint and loaded through the real path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

open_clip = pytest.importorskip("open_clip")
torch = pytest.importorskip("torch")

from knockoff.embedders import weights as kweights  # noqa: E402
from knockoff.embedders import create_embedder  # noqa: E402
from knockoff.embedders.clip import ClipEmbedder, default_weights_available, parse_clip_name  # noqa: E402
from knockoff.errors import EmbedderError, WeightsNotFoundError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TINY = "TinyTest"
TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 1000, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="session")
def tiny_model_config(tmp_path_factory):
    """Register the TinyTest architecture with open_clip (a ViT of width 64, 2 layers, 64x64 input)."""
    cfg_dir = tmp_path_factory.mktemp("open_clip_cfg")
    (cfg_dir / f"{TINY}.json").write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(cfg_dir / f"{TINY}.json")
    return TINY


@pytest.fixture(scope="session")
def tiny_reference(tiny_model_config, tmp_path_factory):
    """A randomly initialized TinyTest model (seeded) and its checkpoint saved as safetensors."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = open_clip.create_model(tiny_model_config).eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model, path


@pytest.fixture
def tiny_ckpt(tiny_reference):
    return tiny_reference[1]


@pytest.fixture(autouse=True)
def isolated_weight_places(tmp_path, monkeypatch):
    """No real weights anywhere: empty project dir, user cache, hub cache; no env overrides."""
    empty = tmp_path / "places"
    for sub in ("project", "home", "hub"):
        (empty / sub).mkdir(parents=True)
    monkeypatch.setattr(kweights, "project_weights_dir", lambda: empty / "project")
    monkeypatch.setenv("HOME", str(empty / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(empty / "hub"))
    monkeypatch.delenv("KNOCKOFF_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("KNOCKOFF_ALLOW_DOWNLOAD", raising=False)
    return empty


def _images():
    rng = np.random.default_rng(1)
    noise = Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8))
    return [
        Image.new("RGB", (100, 80), (200, 30, 30)),
        noise,
        Image.new("L", (50, 70), 128),
        Image.new("RGBA", (64, 64), (0, 120, 255, 100)),
    ]


def _tiny(ckpt, **options):
    options.setdefault("precision", "fp32")  # the fast paths are tested in test_clip_fast.py
    return create_embedder(f"clip:{TINY}/local", checkpoint=ckpt, **options)


# --- loading and embedding -------------------------------------------------------------------------------------


def test_explicit_checkpoint_shapes_norms_settings(tiny_ckpt):
    emb = _tiny(tiny_ckpt)
    assert isinstance(emb, ClipEmbedder)
    assert emb.name == f"clip:{TINY}/local" and emb.dim == 32 and emb.input_size == 64
    assert emb.weights_source == "checkpoint" and emb.precision == "fp32"
    vecs = emb.embed(_images())
    assert vecs.shape == (4, 32) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert emb.embed([]).shape == (0, 32)
    settings = emb.settings()
    assert settings["model"] == TINY and settings["pretrained"] == "local" and settings["dim"] == 32
    assert settings["weights_sha256"] == kweights.file_sha256(tiny_ckpt)
    assert settings["image_size"] == [64, 64]


def test_matches_open_clip_reference(tiny_reference):
    """The loaded weights are the saved ones (not a random init): same vectors as open_clip's encode_image."""
    model, ckpt = tiny_reference
    emb = _tiny(ckpt)
    images = _images()
    with torch.no_grad():
        ref = model.encode_image(torch.stack([emb.preprocess(im) for im in images]), normalize=True).numpy()
    np.testing.assert_allclose(emb.embed(images), ref, atol=1e-5)


def test_deterministic_and_batch_independent(tiny_ckpt):
    images = _images()
    a = _tiny(tiny_ckpt, batch_size=3).embed(images)
    b = _tiny(tiny_ckpt, batch_size=1).embed(images)
    np.testing.assert_allclose(a, b, atol=1e-5)
    same = _tiny(tiny_ckpt).embed([images[1], images[0], images[1]])
    np.testing.assert_allclose(same[0], same[2], atol=1e-6)
    np.testing.assert_allclose(_tiny(tiny_ckpt).embed_one(images[0]), a[0], atol=1e-6)
    assert float(a[0] @ a[1]) < 0.9999  # different images, different vectors


@pytest.mark.parametrize("via", ["env", "weights_dir"])
def test_weights_directory(tiny_ckpt, tmp_path, monkeypatch, via):
    wdir = tmp_path / "w"
    wdir.mkdir()
    (wdir / f"{TINY}__local.safetensors").write_bytes(tiny_ckpt.read_bytes())
    if via == "env":
        monkeypatch.setenv("KNOCKOFF_WEIGHTS_DIR", str(wdir))
        emb = create_embedder(f"clip:{TINY}/local", precision="fp32")
    else:
        emb = create_embedder(f"clip:{TINY}/local", weights_dir=wdir, precision="fp32")
    assert emb.weights_source == via
    assert emb.weights_path == wdir / f"{TINY}__local.safetensors"
    np.testing.assert_allclose(emb.embed(_images()[:1]), _tiny(tiny_ckpt).embed(_images()[:1]), atol=1e-6)


def test_torch_pickle_checkpoint_loads_with_weights_only(tiny_reference, tmp_path):
    model, _ = tiny_reference
    path = tmp_path / f"{TINY}__local.pt"
    torch.save(model.state_dict(), path)
    np.testing.assert_allclose(
        create_embedder(f"clip:{TINY}/local", weights_dir=tmp_path, precision="fp32").embed(_images()[:2]),
        model.encode_image(torch.stack([_tiny(path).preprocess(im) for im in _images()[:2]]), normalize=True)
        .detach()
        .numpy(),
        atol=1e-5,
    )


# --- errors ----------------------------------------------------------------------------------------------------


def test_missing_weights_names_every_place(isolated_weight_places, tiny_model_config, tmp_path, monkeypatch):
    env_dir = tmp_path / "envdir"
    env_dir.mkdir()
    monkeypatch.setenv("KNOCKOFF_WEIGHTS_DIR", str(env_dir))
    with pytest.raises(WeightsNotFoundError) as info:
        create_embedder("clip")
    msg = str(info.value)
    places = isolated_weight_places
    for place in (env_dir, places / "project", places / "home" / ".cache" / "knockoff" / "weights", places / "hub"):
        assert f"{place}/" in msg
    assert "Hugging Face hub cache" in msg
    assert "ViT-B-32__laion2b_s34b_b79k" in msg
    assert "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in msg and "weights/README.md" in msg
    assert "KNOCKOFF_ALLOW_DOWNLOAD" in msg and "perceptual" in msg


def test_missing_explicit_checkpoint(tiny_model_config, tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(WeightsNotFoundError, match="nope.safetensors"):
        _tiny(missing)


def test_missing_in_explicit_weights_dir_does_not_search_elsewhere(tiny_model_config, tmp_path):
    with pytest.raises(WeightsNotFoundError) as info:
        create_embedder(f"clip:{TINY}/local", weights_dir=tmp_path)
    assert str(tmp_path) in str(info.value) and "user cache" not in str(info.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage_pt", "empty", "other_architecture"])
def test_damaged_checkpoint_is_a_clear_error(tiny_ckpt, tmp_path, damage):
    data = tiny_ckpt.read_bytes()
    if damage == "truncated":
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "garbage_pt":
        bad = tmp_path / "bad.pt"
        bad.write_bytes(b"this is not a checkpoint" * 100)
    elif damage == "empty":
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(b"")
    else:
        from safetensors.torch import save_file

        bad = tmp_path / "bad.safetensors"
        save_file({"visual.proj": torch.zeros(3, 3)}, str(bad))
    with pytest.raises(EmbedderError) as info:
        _tiny(bad)
    assert not isinstance(info.value, WeightsNotFoundError)
    assert str(bad) in str(info.value)
    assert "empty" in str(info.value) or "cannot load" in str(info.value)


def test_checksum_mismatch_explicit(tiny_ckpt):
    with pytest.raises(EmbedderError, match="checksum mismatch"):
        _tiny(tiny_ckpt, sha256="0" * 64)
    assert _tiny(tiny_ckpt, sha256=kweights.file_sha256(tiny_ckpt).upper()).dim == 32


def test_checksum_from_manifest(tiny_ckpt, tmp_path):
    name = f"{TINY}__local.safetensors"
    (tmp_path / name).write_bytes(tiny_ckpt.read_bytes())
    manifest = {"checkpoints": [{"model": TINY, "pretrained": "local", "file": name, "sha256": "ab" * 32}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EmbedderError, match="checksum mismatch"):
        create_embedder(f"clip:{TINY}/local", weights_dir=tmp_path)
    manifest["checkpoints"][0]["sha256"] = kweights.file_sha256(tiny_ckpt)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    emb = create_embedder(f"clip:{TINY}/local", weights_dir=tmp_path)
    assert emb.settings()["weights_sha256"] == kweights.file_sha256(tiny_ckpt)


@pytest.mark.parametrize(
    ("name", "options", "error", "match"),
    [
        (f"clip:{TINY}/local", {"colour": 1}, EmbedderError, "unknown option"),
        ("clip:NoSuchModel-99/x", {}, EmbedderError, "unknown open_clip model"),
        (f"clip:{TINY}", {}, EmbedderError, "needs a pretrained tag"),
        (f"clip:{TINY}/local", {"precision": "fp8"}, ValueError, "precision"),
        (f"clip:{TINY}/local", {"batch_size": 0}, ValueError, "batch_size"),
        (f"clip:{TINY}/local", {"precision": "fp16", "device": "cpu"}, EmbedderError, "CUDA"),
        (f"clip:{TINY}/local", {"device": "toaster"}, EmbedderError, "invalid device"),
    ],
)
def test_invalid_requests(tiny_ckpt, name, options, error, match):
    if "needs a pretrained tag" not in match:
        options = {"checkpoint": tiny_ckpt, **options}
    with pytest.raises(error, match=match):
        create_embedder(name, **options)


@pytest.mark.parametrize(
    ("arg", "expected"),
    [(None, ("ViT-B-32", "laion2b_s34b_b79k")), ("ViT-B-32", ("ViT-B-32", "laion2b_s34b_b79k")),
     ("ViT-B-16/openai", ("ViT-B-16", "openai")), ("TinyTest", ("TinyTest", None))],
)
def test_parse_clip_name(arg, expected):
    assert parse_clip_name(arg) == expected


# --- finding weights without torch ------------------------------------------------------------------------------


def test_default_weights_available(tmp_path, isolated_weight_places, monkeypatch):
    assert default_weights_available() is False
    assert default_weights_available(tmp_path) is False
    (tmp_path / "ViT-B-32__laion2b_s34b_b79k.safetensors").write_bytes(b"x")
    assert default_weights_available(tmp_path) is True
    assert default_weights_available() is False  # not in the default places
    monkeypatch.setenv("KNOCKOFF_WEIGHTS_DIR", str(tmp_path))
    assert default_weights_available() is True


def test_default_weights_found_in_hub_cache(isolated_weight_places):
    repo = isolated_weight_places / "hub" / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    assert default_weights_available() is False
    (snapshot / "open_clip_model.safetensors").write_bytes(b"x")
    search = kweights.find_weights("ViT-B-32", "laion2b_s34b_b79k")
    assert search.found and search.source == "hf_cache"
    assert default_weights_available() is True


def test_import_and_weight_check_do_not_import_torch(tmp_path):
    code = (
        "import sys\n"
        "from knockoff.embedders import list_embedders\n"
        "from knockoff.embedders.clip import default_weights_available\n"
        "import knockoff.embedders.clip_fast, knockoff.embedders.weights\n"
        f"default_weights_available({str(tmp_path)!r}); default_weights_available(); list_embedders()\n"
        "assert 'torch' not in sys.modules and 'open_clip' not in sys.modules, 'torch imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_shipped_manifest_and_readme_agree_with_open_clip():
    manifest = json.loads((REPO / "weights" / "manifest.json").read_text())
    default = next(e for e in manifest["checkpoints"] if e.get("default"))
    assert default["file"] == kweights.weights_filename("ViT-B-32", "laion2b_s34b_b79k")
    pcfg = open_clip.get_pretrained_cfg("ViT-B-32", "laion2b_s34b_b79k")
    assert pcfg["hf_hub"].strip("/") == default["hf_hub"]
    assert all(e["sha256"] is None or len(e["sha256"]) == 64 for e in manifest["checkpoints"])
    assert default["hf_hub"] in (REPO / "weights" / "README.md").read_text()
