"""The derived OCR models (knockoff.match.ocr_derive, ocr_int8) and their cache (knockoff.match.ocr_cache), on tiny
ONNX models built here; and the reader's fallback to the shipped models when deriving or loading fails."""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

from knockoff.errors import ConfigError
from knockoff.match import ocr_cache, ocr_derive
from knockoff.match import text as text_module
from knockoff.match.ocr_cache import MAGIC, cached_or_built, read_cached, write_cached
from knockoff.match.ocr_derive import kept_classes
from knockoff.match.text import TextReadSettings

HAVE_ONNX = importlib.util.find_spec("onnx") is not None and importlib.util.find_spec("onnxruntime") is not None
HAVE_RAPIDOCR = importlib.util.find_spec("rapidocr") is not None
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="onnx and onnxruntime are needed")


# -- the cache ---------------------------------------------------------------------------------------------


def test_cache_round_trip_and_missing_file(tmp_path):
    path = tmp_path / "sub" / "model.onnx"
    assert read_cached(path) is None
    write_cached(path, b"payload \x00\n bytes")
    assert read_cached(path) == b"payload \x00\n bytes"
    assert path.read_bytes().startswith(MAGIC)
    assert [p.name for p in path.parent.iterdir()] == ["model.onnx"]  # no temporary file left


@pytest.mark.parametrize("damage", [
    lambda data: data[:-1],                       # cut short
    lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # one bit flipped in the payload
    lambda data: data.replace(MAGIC, b"x" * len(MAGIC)),  # not a cache file
    lambda data: b"",                             # empty
    lambda data: data.split(b"\n", 1)[1],         # no header
])
def test_a_damaged_cache_file_is_detected_and_built_again(tmp_path, caplog, damage):
    path = tmp_path / "model.onnx"
    write_cached(path, b"the good payload")
    path.write_bytes(damage(path.read_bytes()))
    with caplog.at_level(logging.WARNING, logger="knockoff.match.ocr_cache"):
        assert read_cached(path) is None
    assert "damaged" in caplog.text
    built = []
    assert cached_or_built(path, lambda: built.append(1) or b"the good payload") == b"the good payload"
    assert built == [1] and read_cached(path) == b"the good payload"  # rewritten whole


def test_cached_or_built_builds_once(tmp_path):
    calls = []
    for _ in range(3):
        assert cached_or_built(tmp_path / "m", lambda: calls.append(1) or b"abc") == b"abc"
    assert calls == [1]


def test_an_unwritable_cache_still_returns_the_built_model(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING, logger="knockoff.match.ocr_cache"):
        assert cached_or_built(blocker / "model.onnx", lambda: b"built") == b"built"
    assert "cannot cache" in caplog.text


def _write_many(args: tuple[str, int]) -> None:
    path, seed = args
    payload = bytes(np.random.default_rng(seed).integers(0, 256, 200_000, dtype=np.uint8))
    for _ in range(5):
        write_cached(Path(path), payload)


def test_concurrent_writers_leave_one_whole_file(tmp_path):
    path = tmp_path / "model.onnx"
    payloads = {bytes(np.random.default_rng(s).integers(0, 256, 200_000, dtype=np.uint8)) for s in range(4)}
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_write_many, [(str(path), s) for s in range(4)])
    assert read_cached(path) in payloads  # one writer's whole payload, never a mix
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KNOCKOFF_CACHE_DIR", str(tmp_path / "k"))
    assert ocr_cache.cache_dir() == tmp_path / "k"
    monkeypatch.delenv("KNOCKOFF_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ocr_cache.cache_dir() == tmp_path / "xdg" / "knockoff"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert ocr_cache.cache_dir() == Path.home() / ".cache" / "knockoff"


# -- the classes kept ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("characters", "expected"), [
    (["a", "中", "b"], [0, 1, 3, 4]),          # blank, a, b, the space (4); the CJK character goes
    (["中", "文"], [0, 3]),                     # only blank and space
    (["€", "™", "É", "ß", "Ω", "Ж", "Ａ"], [0, 1, 2, 3, 4, 5, 6, 7, 8]),  # euro, trade mark, Latin, Greek, Cyrillic, full-width
    (["あ", "→", "ab"], [0, 4]),                 # kana, arrows and multi-character entries go
    ([], [0, 1]),
])
def test_kept_classes(characters, expected):
    assert kept_classes(characters) == expected


# -- tiny models -----------------------------------------------------------------------------------------------


def _recogniser(characters: list[str], seed: int = 0):
    """x (1, T, 4) -> MatMul -> Identity -> Add -> Softmax over blank + characters + space."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    classes = len(characters) + 2
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.normal(size=(4, classes)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.normal(size=(classes,)).astype(np.float32), "b")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["mm"]), helper.make_node("Identity", ["mm"], ["mm2"]),
             helper.make_node("Add", ["mm2", "b"], ["logits"]), helper.make_node("Softmax", ["logits"], ["y"], axis=2)]
    graph = helper.make_graph(nodes, "rec", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "T", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "T", classes])], [weight, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.helper.set_model_props(model, {"character": "\n".join(characters)})
    return model


def _run(model, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model if isinstance(model, bytes) else model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@needs_onnx
def test_pruned_recogniser_keeps_the_kept_classes_renormalised():
    characters = ["a", "中", "b", "文", "C"]
    model = _recogniser(characters)
    pruned = ocr_derive.prune_classes(model, characters)
    x = np.random.default_rng(1).normal(size=(1, 7, 4)).astype(np.float32)
    full, small = _run(model, x), _run(pruned, x)
    keep = kept_classes(characters)
    assert keep == [0, 1, 3, 5, 6] and small.shape == (1, 7, 5)
    expected = full[:, :, keep] / full[:, :, keep].sum(axis=2, keepdims=True)
    np.testing.assert_allclose(small, expected, rtol=1e-5, atol=1e-6)
    assert {p.key: p.value for p in pruned.metadata_props}["character"] == "a\nb\nC"
    assert _run(model, x).shape == (1, 7, 7)  # the source is left alone


@needs_onnx
def test_pruning_refuses_a_model_it_does_not_understand():
    import onnx
    from onnx import TensorProto, helper

    with pytest.raises(ConfigError, match="has 5 classes for 2 characters"):
        ocr_derive.prune_classes(_recogniser(["a", "b", "c"]), ["a", "b"])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    with pytest.raises(ConfigError, match="does not end in MatMul"):
        ocr_derive.prune_classes(onnx.helper.make_model(graph), ["a", "b"])


def _conv_net(seed: int = 0):
    """x (1, 3, H, W) -> Conv 3x3 (8) -> Relu -> Conv 1x1 (4), opset 11, with a metadata entry."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(np.float32), "b1"),
             numpy_helper.from_array(rng.normal(0, 0.3, (4, 8, 1, 1)).astype(np.float32), "w2")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]), helper.make_node("Conv", ["r1", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "H", "W"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, "H", "W"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.helper.set_model_props(model, {"character": "a\nb"})
    return model


@needs_onnx
def test_int8_copy_has_quantised_convolutions_and_close_outputs():
    import onnx

    rng = np.random.default_rng(2)
    calibration = [rng.uniform(-1, 1, (1, 3, 16, 24)).astype(np.float32) for _ in range(4)]
    model = _conv_net()
    quantised = onnx.load_from_string(ocr_derive.quantize_int8(model, calibration))
    ops = [n.op_type for n in quantised.graph.node]
    assert ops.count("QuantizeLinear") >= 2 and ops.count("Conv") == 2
    assert {p.key: p.value for p in quantised.metadata_props}["character"] == "a\nb"
    x = rng.uniform(-1, 1, (1, 3, 20, 20)).astype(np.float32)
    full, small = _run(model, x), _run(quantised, x)
    assert small.shape == full.shape
    assert np.abs(small - full).max() < 0.05 * np.abs(full).max()  # int8: close, not equal
    assert not np.array_equal(small, full)


@needs_onnx
def test_derived_model_is_cached_by_source_and_rebuilt_when_damaged(tmp_path):
    import onnx

    source = tmp_path / "net.onnx"
    onnx.save(_conv_net(), str(source))
    calls = []

    def derive(model):
        calls.append(model.graph.name)
        return b"derived from " + model.graph.name.encode()

    folder = tmp_path / "cache"
    assert ocr_derive.derived_model(source, "test", derive, folder) == b"derived from net"
    assert ocr_derive.derived_model(source, "test", derive, folder) == b"derived from net"
    assert len(calls) == 1
    (cached,) = folder.iterdir()
    cached.write_bytes(cached.read_bytes()[:-3])  # damaged
    assert ocr_derive.derived_model(source, "test", derive, folder) == b"derived from net"
    assert len(calls) == 2
    onnx.save(_conv_net(seed=1), str(source))  # another source model: another key, and the old copy goes
    ocr_derive.derived_model(source, "test", derive, folder)
    ocr_derive.derived_model(source, "other", derive, folder)
    assert len(calls) == 4 and sorted(p.name.split(".")[1] for p in folder.iterdir()) == ["other", "test"]


# -- the reader's choice and its fallbacks -----------------------------------------------------------------------


def test_models_setting_is_validated():
    assert TextReadSettings().models == "int8"
    with pytest.raises(ConfigError, match="models must be one of int8, full"):
        TextReadSettings(models="fp16")


def test_engine_key_tells_the_models_apart():
    assert text_module.engine_key(TextReadSettings(models="full")) != text_module.engine_key(TextReadSettings())


@pytest.mark.skipif(not HAVE_RAPIDOCR, reason="rapidocr is not installed")
def test_a_failed_derivation_falls_back_to_the_shipped_models(monkeypatch, caplog):
    from knockoff.match import ocr_int8, ocr_models

    def broken(*args, **kwargs):
        raise RuntimeError("no room to derive")

    loaded = []
    monkeypatch.setattr(ocr_int8, "int8_models", broken)
    monkeypatch.setattr(ocr_models, "load_models", lambda threads, *rest: loaded.append((threads, rest)) or "shipped")
    with caplog.at_level(logging.WARNING, logger="knockoff.match.text"):
        assert text_module._create_engine((1, "int8")) == "shipped"
    assert loaded == [(1, ())] and "could not be derived (RuntimeError: no room to derive)" in caplog.text


@pytest.mark.skipif(not HAVE_RAPIDOCR, reason="rapidocr is not installed")
def test_derived_models_that_cannot_be_loaded_fall_back_to_the_shipped_models(caplog):
    from knockoff.match import ocr_models

    with caplog.at_level(logging.WARNING, logger="knockoff.match.ocr_models"):
        models = ocr_models.load_models(1, {"det": b"not a model", "rec": b"nor this"}, "int8")
    assert models.name == ocr_models.ENGINE_NAME and "could not be loaded" in caplog.text
    assert models.detect(np.full((64, 64, 3), 255, np.uint8)).shape == (0, 4, 2)


@pytest.mark.slow
@pytest.mark.skipif(not (HAVE_RAPIDOCR and HAVE_ONNX), reason="rapidocr and onnx are needed")
def test_int8_models_derive_load_and_read(tmp_path, monkeypatch):
    from PIL import Image, ImageDraw

    from knockoff.evaluate.edits import load_font

    monkeypatch.setenv("KNOCKOFF_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(text_module, "_engines", {})
    monkeypatch.setattr(text_module, "_failures", {})
    image = Image.new("RGB", (480, 320), (250, 248, 240))
    ImageDraw.Draw(image).text((40, 120), "KNOCKOFF", font=load_font(64), fill=(20, 20, 30))
    found = text_module.read_text(image, TextReadSettings(models="int8"))
    assert found.engine == "rapidocr:PP-OCRv6-small:int8" and "KNOCKOFF" in " ".join(found.texts).upper()
    assert len(list((tmp_path / "ocr").glob("*.onnx"))) == 2
    assert os.environ["KNOCKOFF_CACHE_DIR"] == str(tmp_path)


@pytest.mark.parametrize(("cpuinfo", "machine", "expected"), [
    ("processor : 0\nflags : fpu avx2 avx512f avx512_vnni\n", "x86_64", False),  # AVX-512 VNNI: 8 bits
    ("flags\t\t: fpu sse4_2 avx2 avx_vnni\n", "x86_64", False),                    # AVX-VNNI
    ("flags\t\t: fpu sse4_2 avx avx2 fma\n", "x86_64", True),                       # AVX2 only: 7 bits
    ("", "x86_64", True),                                                          # unknown x86: the safe side
    ("Features\t: fp asimd asimddp\n", "aarch64", False),                          # ARM
])
def test_seven_bit_weights_only_on_x86_without_vnni(cpuinfo, machine, expected):
    assert ocr_derive.reduce_range(ocr_derive.cpu_flags(cpuinfo), machine) is expected


@needs_onnx
def test_pointwise_only_quantises_the_1x1_convolutions():
    import onnx

    model = _conv_net()
    model.graph.node[2].name = "mix"
    assert ocr_derive.pointwise_convs(model) == ["mix"]
    rng = np.random.default_rng(3)
    calibration = [rng.uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32) for _ in range(2)]
    quantised = onnx.load_from_string(ocr_derive.quantize_int8(model, calibration, pointwise_only=True))
    weights_quantised = [n for n in quantised.graph.node if n.op_type == "DequantizeLinear"
                         and any(i.startswith("w") for i in n.input)]
    assert [n.input[0].split("_")[0] for n in weights_quantised] == ["w2"]  # the 3 x 3 convolution's stay float


# -- the first use says what it waits for --------------------------------------------------------------------------


@needs_onnx
def test_first_use_says_the_models_are_prepared_once_and_later_uses_say_nothing(tmp_path, monkeypatch, caplog):
    import onnx

    from knockoff.match import ocr_int8

    det, rec = tmp_path / "det.onnx", tmp_path / "rec.onnx"
    onnx.save(_conv_net(), str(det))
    onnx.save(_conv_net(seed=1), str(rec))
    folder = tmp_path / "cache"
    made = []

    def fake_derived_model(source, recipe, derive, where):  # the cache's job, without the slow quantisation
        path = ocr_derive.derived_path(source, recipe, where)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"model")
        made.append(path)
        return b"model"

    monkeypatch.setattr(ocr_int8, "derived_model", fake_derived_model)
    with caplog.at_level(logging.INFO, logger="knockoff.match.ocr_int8"):
        ocr_int8.int8_models(det, rec, folder)
    notes = [r.getMessage() for r in caplog.records if r.name == "knockoff.match.ocr_int8"]
    assert len(notes) == 1 and "once" in notes[0] and str(folder) in notes[0]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="knockoff.match.ocr_int8"):
        ocr_int8.int8_models(det, rec, folder)
    assert not [r for r in caplog.records if r.name == "knockoff.match.ocr_int8"]
    made[1].unlink()  # one copy gone: said again
    with caplog.at_level(logging.INFO, logger="knockoff.match.ocr_int8"):
        ocr_int8.int8_models(det, rec, folder)
    assert len([r for r in caplog.records if r.name == "knockoff.match.ocr_int8"]) == 1
