"""Faster copies of the OCR models, derived from the ``rapidocr`` wheel's own at first use and cached on the user's
machine (:mod:`knockoff.match.ocr_cache`; nothing is downloaded and no model file is kept in the repository).

Two changes, each measured on a shared 2-core AMD EPYC (AVX-512 VNNI) with one thread a call:

* **int8 convolutions**: a convolution's weights are quantised to int8 per output channel and its input to uint8,
  with ranges measured on text rendered by :mod:`knockoff.match.ocr_int8`: static quantisation in onnxruntime's
  QDQ form, which it runs as integer convolutions. Convolutions are about 3/4 of either model's time. Every
  convolution of the detector (~0.73x its time on a 384-px photo); only the 1 x 1 ones of the recogniser
  (:func:`pointwise_convs`; ~0.55x its time on a 320-px line with the cut below): with its 3 x 3 and depthwise
  ones in int8 too, 0.81 of its confident lines read the same letters as the shipped model, 0.92 without them,
  and the grocerystore brands read fell from 81 to 78 of 150. (onnxruntime's *dynamic* quantisation was no
  faster: its integer convolution is slow.)
* **the recogniser's output layer cut to the characters knockoff reads** (:data:`KEPT_RANGES`: Latin, Greek,
  punctuation, currency signs and full-width ASCII, ~800 of its 18,710 classes, mostly CJK): its last projection
  and the decoding of its output shrink ~23 times. CTC's blank (class 0) and the space (the last class) stay;
  the reduced character list replaces the model's own in its metadata, so decoding always matches the model.
  A character outside the kept set can no longer be read: a line is read with the nearest kept character.

The derived files are keyed by a hash of the source model, the recipe, and the onnx and onnxruntime versions.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from knockoff.errors import ConfigError
from knockoff.match.ocr_cache import cache_dir, cached_or_built

__all__ = ["DERIVATION_VERSION", "KEPT_RANGES", "cpu_flags", "derived_model", "derived_path", "kept_classes", "pointwise_convs",
           "prune_classes", "quantize_int8", "reduce_range"]

log = logging.getLogger(__name__)

DERIVATION_VERSION = 2  # bump when a recipe changes: the cache key changes with it
QUANT_OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear need opset 13
KEPT_RANGES: tuple[tuple[int, int], ...] = (
    (0x0020, 0x024F),  # ASCII, Latin-1, Latin Extended-A and -B
    (0x0250, 0x02FF),  # IPA letters and spacing modifiers (stylised Latin letters)
    (0x0370, 0x052F),  # Greek, Cyrillic
    (0x1E00, 0x1EFF),  # Latin Extended Additional (Vietnamese and others)
    (0x2000, 0x206F),  # general punctuation (dashes, quotes, bullets)
    (0x20A0, 0x20CF),  # currency signs (the euro)
    (0x2100, 0x214F),  # letterlike symbols (the trade mark sign)
    (0xFF01, 0xFF5E),  # full-width ASCII
)


def int8_reads(text: str) -> bool:
    """Whether the int8 recogniser can write every character of ``text`` (white space aside): it keeps only the
    characters of :data:`KEPT_RANGES` (Latin, Greek, Cyrillic), the shipped one writes CJK as well."""
    return all(c.isspace() or any(low <= ord(c) <= high for low, high in KEPT_RANGES) for c in text)


def kept_classes(characters: Sequence[str]) -> list[int]:
    """The recogniser's output classes to keep for its character list (the classes are: CTC's blank, then each
    character, then the space): the blank, each character in :data:`KEPT_RANGES`, and the space."""
    kept = [1 + i for i, c in enumerate(characters)
            if len(c) == 1 and any(low <= ord(c) <= high for low, high in KEPT_RANGES)]
    return [0, *kept, len(characters) + 1]


def _output_layer(graph: Any) -> tuple[Any, Any, Any, Any]:
    """The recogniser's last layer: (MatMul, its weight, the bias Add, the bias) feeding the Softmax that is the
    graph's output (raises ConfigError when the graph does not end so)."""
    nodes = {out: node for node in graph.node for out in node.output}
    inits = {init.name: init for init in graph.initializer}

    def producer(name: str) -> Any:  # the node that computes ``name``, looking through Identity nodes
        node = nodes.get(name)
        while node is not None and node.op_type == "Identity":
            node = nodes.get(node.input[0])
        return node

    softmax = producer(graph.output[0].name)
    add = producer(softmax.input[0]) if softmax is not None and softmax.op_type == "Softmax" else None
    if add is None or add.op_type != "Add":
        raise ConfigError("the recogniser does not end in MatMul + Add + Softmax")
    matmul = next((producer(i) for i in add.input if i not in inits), None)
    bias = next((inits[i] for i in add.input if i in inits), None)
    weight = inits.get(matmul.input[1]) if matmul is not None and matmul.op_type == "MatMul" else None
    if weight is None or bias is None or len(weight.dims) != 2 or list(bias.dims)[-1:] != [weight.dims[1]]:
        raise ConfigError("the recogniser does not end in MatMul + Add + Softmax")
    return matmul, weight, add, bias


def prune_classes(model: Any, characters: Sequence[str]) -> Any:
    """A copy of the recogniser ``model`` (an onnx ModelProto whose output is a Softmax over blank + characters +
    space) that predicts only :func:`kept_classes`, with the reduced list as its ``character`` metadata."""
    import onnx  # noqa: PLC0415 (heavy, optional)
    from onnx import numpy_helper  # noqa: PLC0415

    pruned = onnx.ModelProto()
    pruned.CopyFrom(model)
    graph = pruned.graph
    _matmul, weight, _add, bias = _output_layer(graph)
    if weight.dims[1] != len(characters) + 2:
        raise ConfigError(f"the recogniser has {weight.dims[1]} classes for {len(characters)} characters")
    keep = kept_classes(characters)
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight)[:, keep], weight.name))
    bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias)[..., keep], bias.name))
    dims = graph.output[0].type.tensor_type.shape.dim
    if dims:
        dims[-1].Clear()
        dims[-1].dim_value = len(keep)
    del graph.value_info[:]  # shapes inferred for the old class count would clash; onnxruntime infers them again
    meta = {p.key: p for p in pruned.metadata_props}
    if "character" in meta:
        meta["character"].value = "\n".join(characters[i - 1] for i in keep[1:-1])
    return pruned


class _Inputs:
    """onnxruntime's calibration data reader over a list of input tensors."""

    def __init__(self, name: str, tensors: Sequence[np.ndarray]):
        self._feeds = iter([{name: t} for t in tensors])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags as Linux lists them in /proc/cpuinfo (empty where it cannot be read)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return frozenset()
    line = next((ln for ln in cpuinfo.splitlines() if ln.split(":")[0].strip() in ("flags", "Features")), "")
    return frozenset(line.partition(":")[2].split())


def reduce_range(flags: frozenset[str], machine: str) -> bool:
    """Whether int8 weights should use 7 bits on this CPU: on x86 without VNNI, onnxruntime multiplies uint8 by
    int8 with an instruction whose 16-bit sums can saturate (its documentation's advice for such CPUs); with
    VNNI (AVX-512 or AVX) and on other architectures, the full 8 bits."""
    x86 = machine.lower() in ("x86_64", "amd64", "i386", "i686")
    return x86 and not flags & {"avx512_vnni", "avx_vnni", "amx_int8"}


def pointwise_convs(model: Any) -> list[str]:
    """The names of ``model``'s 1 x 1 convolutions that mix all channels (no groups), whose weights are stored in
    it."""
    inits = {init.name: tuple(init.dims) for init in model.graph.initializer}
    found = []
    for node in model.graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if node.op_type == "Conv" and group == 1 and inits.get(node.input[1], ())[2:] == (1, 1):
            found.append(node.name)
    return found


def quantize_int8(model: Any, tensors: Sequence[np.ndarray], seven_bit: bool = False,
                  pointwise_only: bool = False) -> bytes:
    """``model`` (an onnx ModelProto) with its convolutions quantised statically to int8 (weights per channel,
    QDQ form; 7-bit weights with ``seven_bit``, :func:`reduce_range`; only the 1 x 1 ones with ``pointwise_only``,
    :func:`pointwise_convs`), their input ranges measured on ``tensors`` (the model's input); the serialised
    result."""
    import onnx  # noqa: PLC0415 (heavy, optional)
    from onnx import version_converter  # noqa: PLC0415
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static  # noqa: PLC0415
    from onnxruntime.quantization.shape_inference import quant_pre_process  # noqa: PLC0415

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), QUANT_OPSET)
    source = onnx.ModelProto()
    source.CopyFrom(version_converter.convert_version(model, QUANT_OPSET) if opset < QUANT_OPSET else model)
    for number, node in enumerate(source.graph.node):  # nodes are chosen by name: every one needs its own
        node.name = node.name or f"knockoff_node_{number}"
    with tempfile.TemporaryDirectory(prefix="knockoff-ocr-int8-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the quantiser's own deprecation notices are not the caller's concern
        plain, prepared, out = Path(tmp) / "model.onnx", Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        onnx.save(source, str(plain))
        quant_pre_process(str(plain), str(prepared), skip_symbolic_shape=True)
        chosen = pointwise_convs(onnx.load(str(prepared))) if pointwise_only else None
        quantize_static(str(prepared), str(out), _Inputs(model.graph.input[0].name, tensors),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"], reduce_range=seven_bit,
                        nodes_to_quantize=chosen)
        quantized = onnx.load(str(out))
    kept = {p.key for p in quantized.metadata_props}
    for prop in model.metadata_props:  # the character list must survive
        if prop.key not in kept:
            quantized.metadata_props.add(key=prop.key, value=prop.value)
    return bytes(quantized.SerializeToString())


def _cache_key(source: bytes, recipe: str) -> str:
    import onnx  # noqa: PLC0415 (heavy, optional)
    import onnxruntime  # noqa: PLC0415

    versions = f"{recipe}|v{DERIVATION_VERSION}|onnx {onnx.__version__}|onnxruntime {onnxruntime.__version__}"
    return hashlib.sha256(hashlib.sha256(source).digest() + versions.encode()).hexdigest()[:24]


def derived_path(source: Path, recipe: str, folder: Path | None = None, data: bytes | None = None) -> Path:
    """Where :func:`derived_model` caches the copy of ``source`` made by ``recipe`` (``data``: its bytes, if read)."""
    data = source.read_bytes() if data is None else data
    return (folder or cache_dir() / "ocr") / f"{source.stem}.{recipe}.{_cache_key(data, recipe)}.onnx"


def derived_model(source: Path, recipe: str, derive: Callable[[Any], bytes], folder: Path | None = None) -> bytes:
    """The model at ``source`` transformed by ``derive`` (an onnx ModelProto in, serialised model out), from the
    cache (``folder``, default :func:`~knockoff.match.ocr_cache.cache_dir` / ``ocr``) when it holds it for this
    source, ``recipe`` and versions; else derived now and cached. Raises what deriving raises."""
    data = source.read_bytes()
    path = derived_path(source, recipe, folder, data)

    def build() -> bytes:
        import onnx  # noqa: PLC0415 (heavy, optional)

        log.debug("deriving the %s copy of %s (once; cached at %s)", recipe, source.name, path)
        payload = derive(onnx.load_from_string(data))
        _forget_older(path, f"{source.stem}.{recipe}.")
        return payload

    return cached_or_built(path, build)


def _forget_older(path: Path, family: str) -> None:
    """Remove the cached copies of the same model and recipe made for other sources or versions (a process still
    using one has read it whole already; one about to read it derives its own)."""
    for old in path.parent.glob(f"{family}*.onnx") if path.parent.is_dir() else ():
        if old.name != path.name and old.name.startswith(family) and old.name.count(".") == path.name.count("."):
            try:
                old.unlink()
            except OSError as exc:
                log.debug("could not remove the outdated cached model %s: %s", old, exc)
