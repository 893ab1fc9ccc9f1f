"""The ``clip`` engine: open_clip image towers with weights found locally (never random weights).

Importing this module is light: torch and open_clip are imported when an embedder is created.
Names: ``clip`` (the default, ``ViT-B-32/laion2b_s34b_b79k``), ``clip:MODEL`` or ``clip:MODEL/PRETRAINED``.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from knockoff.embedders.base import Embedder, l2_normalize
from knockoff.errors import ConfigError, EmbedderError
from knockoff.embedders.preprocess import FastPreprocess
from knockoff.embedders.weights import (
    DEFAULT_MODEL,
    DEFAULT_PRETRAINED,
    download_allowed,
    file_sha256,
    find_weights,
    not_found_error,
    verify_sha256,
    weights_available,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

#: The pretrained tag used when a name gives only the model.
DEFAULT_TAGS = {DEFAULT_MODEL: DEFAULT_PRETRAINED}

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")


def default_weights_available(weights_dir: str | os.PathLike[str] | None = None) -> bool:
    """True when the default CLIP checkpoint is on this machine. Checks files only (no torch import)."""
    return weights_available(DEFAULT_MODEL, DEFAULT_PRETRAINED, weights_dir)


def parse_clip_name(arg: str | None) -> tuple[str, str | None]:
    """``"MODEL/PRETRAINED"`` or ``"MODEL"`` (or None) -> (model, tag or None when not given)."""
    if not arg:
        return DEFAULT_MODEL, DEFAULT_PRETRAINED
    model, _, tag = arg.strip().partition("/")
    model, tag = model.strip(), tag.strip()
    if not model:
        raise EmbedderError(f"invalid clip name {arg!r}: expected 'clip:MODEL' or 'clip:MODEL/PRETRAINED'")
    return model, (tag or DEFAULT_TAGS.get(model))


class ClipEmbedder(Embedder):
    """Image embeddings of an open_clip model, L2-normalized float32.

    Args:
        model: open_clip architecture name, e.g. ``ViT-B-32``.
        pretrained: tag of the trained weights, e.g. ``laion2b_s34b_b79k`` (part of the file name searched).
        checkpoint: explicit checkpoint file; when given nothing else is searched.
        weights_dir: directory holding ``MODEL__TAG.safetensors``; when given, the default places are not searched.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None picks CUDA when available.
        batch_size: images per forward pass.
        precision: ``"auto"`` (the device's fast path, kept only when it agrees with fp32 on a probe batch
            through these weights; see :mod:`knockoff.embedders.clip_fast`), ``"fp32"``, ``"bf16"``,
            ``"fp16"`` (CUDA only), ``"int8"`` (CPU only).
        sha256: expected checksum of the checkpoint (overrides the manifest).
    """

    kind = "clip"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        pretrained: str | None = DEFAULT_PRETRAINED,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
        weights_dir: str | os.PathLike[str] | None = None,
        device: str | None = None,
        batch_size: int = 32,
        precision: str = "auto",
        sha256: str | None = None,
    ):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if pretrained is None:
            if checkpoint is None:
                raise EmbedderError(
                    f"clip model {model!r} needs a pretrained tag: use 'clip:{model}/TAG' "
                    f"(known tags: {', '.join(_known_tags(model)) or 'none'}) or pass checkpoint=PATH"
                )
            pretrained = "custom"
        self._model_name = model
        self._pretrained = pretrained
        self.batch_size = batch_size
        self._weights_sha256: str | None = None
        self._load(checkpoint, weights_dir, device, precision, sha256)

    # --- loading --------------------------------------------------------------------------------------------------

    def _load(self, checkpoint: Any, weights_dir: Any, device: str | None, precision: str, sha256: str | None) -> None:
        import open_clip
        import torch

        from knockoff.embedders import clip_fast

        model_name, tag = self._model_name, self._pretrained
        torch_device = _torch_device(device)
        if precision != "auto":
            clip_fast.check_precision(precision, torch_device)
        model_cfg = _model_config(model_name)
        pcfg = open_clip.get_pretrained_cfg(model_name, tag) or {}
        path, source, expected = _locate_checkpoint(model_name, tag, pcfg, checkpoint, weights_dir)
        if path.stat().st_size == 0:
            raise EmbedderError(f"{path}: checkpoint file is empty; download it again (see weights/README.md)")
        verify_sha256(path, sha256 or expected)
        if sha256 or expected:
            self._weights_sha256 = (sha256 or expected or "").lower()

        visual = _load_visual(model_name, path, pcfg)
        self._set_preprocess(dict(visual.preprocess_cfg))
        self._dim = int(model_cfg["embed_dim"])
        self.weights_path = path
        self.weights_source = source

        self.device = str(torch_device)
        probe = None
        if precision == "auto":
            probe = torch.stack([self._preprocess(im) for im in clip_fast.probe_images(4, self.input_size)])
        self._runner = clip_fast.prepare(visual, torch_device, precision, probe)
        #: The precision in use ("auto" resolved), and its lowest probe cosine to fp32 when "auto" chose it.
        self.precision = self._runner.precision
        self.precision_agreement = self._runner.agreement
        log.info(
            "clip %s/%s loaded from %s (%s), device %s, precision %s",
            model_name, tag, path, source, self.device, self.precision,
        )

    def _set_preprocess(self, pp: dict[str, Any]) -> None:
        """open_clip's preprocessing for the model's ``preprocess_cfg``, and its batched numpy twin."""
        import open_clip

        self._preprocess = open_clip.image_transform(
            pp["size"],
            is_train=False,
            mean=pp.get("mean"),
            std=pp.get("std"),
            resize_mode=pp.get("resize_mode"),
            interpolation=pp.get("interpolation"),
            fill_color=pp.get("fill_color", 0),
        )
        # The same preprocessing, batched in numpy (None for configurations it does not cover: open_clip's then).
        self._fast_preprocess = FastPreprocess.from_cfg(pp)
        size = pp["size"]
        self._image_size = tuple(size) if isinstance(size, (tuple, list)) else (int(size), int(size))
        self.input_size = max(self._image_size)

    # --- Embedder -------------------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"clip:{self._model_name}/{self._pretrained}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def pretrained(self) -> str:
        return self._pretrained

    @property
    def weights_sha256(self) -> str:
        """sha256 of the checkpoint file (computed once, then cached)."""
        if self._weights_sha256 is None:
            self._weights_sha256 = file_sha256(self.weights_path)
        return self._weights_sha256

    def settings(self) -> dict[str, Any]:
        # Precision is left out on purpose: the fast paths agree with fp32 (cosine >= 0.995), so an index built
        # on a GPU in fp16 stays searchable on a CPU in fp32.
        return {
            "name": self.name,
            "dim": self.dim,
            "model": self._model_name,
            "pretrained": self._pretrained,
            "image_size": list(self._image_size),
            "weights_sha256": self.weights_sha256,
        }

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """The model's own preprocessing of one image: a float tensor (3, H, W)."""
        return self._preprocess(image)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        images = list(images)
        if not images:
            return np.zeros((0, self._dim), dtype=np.float32)
        chunks = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            if self._fast_preprocess is not None:
                batch = torch.from_numpy(self._fast_preprocess.batch(chunk))
            else:
                batch = torch.stack([self._preprocess(im) for im in chunk])
            chunks.append(self.embed_tensor(batch))
        return l2_normalize(np.concatenate(chunks, axis=0))

    def embed_tensor(self, batch: torch.Tensor) -> np.ndarray:
        """Embed an already preprocessed batch (n, 3, H, W); returns float32 (n, dim), L2-normalized."""
        return l2_normalize(self._runner(batch))

    def __repr__(self) -> str:
        return f"ClipEmbedder(name={self.name!r}, dim={self.dim}, device={self.device!r}, precision={self.precision!r})"


def _torch_device(device: str | None) -> torch.device:
    """The torch device asked for (CUDA when available if None); an error names a bad or absent device."""
    import torch

    try:
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        torch_device = torch.device(device)
    except RuntimeError as exc:
        raise EmbedderError(f"invalid device {device!r}: {exc}") from exc
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise EmbedderError(f"device {device!r} asked for, but torch sees no CUDA device here")
    return torch_device


def _model_config(model_name: str) -> dict[str, Any]:
    """open_clip's configuration of ``model_name``; an unknown name is an error listing some known ones."""
    import open_clip

    model_cfg = open_clip.get_model_config(model_name)
    if model_cfg is None:
        raise EmbedderError(
            f"unknown open_clip model {model_name!r}; known models include: "
            f"{', '.join(m for m in open_clip.list_models() if m.startswith(('ViT-B', 'ViT-L', 'RN50')))} "
            "(open_clip.list_models() has them all)"
        )
    return dict(model_cfg)


def _locate_checkpoint(model_name: str, tag: str, pcfg: dict[str, Any], checkpoint: Any,
                       weights_dir: Any) -> tuple[Path, str | None, str | None]:
    """(path, where it was found, expected sha256) of the checkpoint; downloads only when allowed.

    Raises :class:`WeightsNotFoundError` saying where it looked and how to get the weights.
    """
    import open_clip

    # open_clip writes "org/repo/" or "org/repo/filename": the repository is the first two parts.
    hub_id = "/".join(str(pcfg["hf_hub"]).strip("/").split("/")[:2]) if pcfg.get("hf_hub") else None
    search = find_weights(model_name, tag, checkpoint=checkpoint, weights_dir=weights_dir, hub_id=hub_id)
    if search.path is not None:
        return search.path, search.source, search.expected_sha256
    if checkpoint is None and weights_dir is None and pcfg and download_allowed():
        log.info("downloading %s/%s through open_clip (KNOCKOFF_ALLOW_DOWNLOAD=1)", model_name, tag)
        try:
            return Path(open_clip.download_pretrained(pcfg)), "download", search.expected_sha256
        except (OSError, RuntimeError, ValueError) as exc:
            raise not_found_error(model_name, tag, search.looked, extra=f"Download failed: {exc}") from exc
    extra = "" if pcfg or checkpoint is not None else (
        f"open_clip knows no pretrained tag {tag!r} for {model_name}, so it cannot download it "
        f"(known tags: {', '.join(_known_tags(model_name)) or 'none'})."
    )
    if pcfg and not download_allowed() and checkpoint is None and weights_dir is None:
        extra += " Downloading is off (set KNOCKOFF_ALLOW_DOWNLOAD=1 on a machine with internet)."
    raise not_found_error(model_name, tag, search.looked, extra=extra)


def _load_visual(model_name: str, path: Path, pcfg: dict[str, Any]) -> Any:
    """open_clip's image tower (a ``torch.nn.Module``) of ``model_name`` with the checkpoint's weights, in eval
    mode, fp32 on the CPU.

    Damaged bytes or weights of another model raise :class:`EmbedderError` naming the file.
    """
    import open_clip

    preprocess_override = {k: pcfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in pcfg}
    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - safetensors is a dependency
        SafetensorError = OSError  # type: ignore[misc,assignment]  # noqa: N806
    try:
        clip_model = open_clip.create_model(
            model_name,
            pretrained=str(path),
            precision="fp32",
            device="cpu",
            force_quick_gelu=bool(pcfg.get("quick_gelu", False)),
            force_preprocess_cfg=preprocess_override,
            pretrained_text=False,
            weights_only=True,
        )
    except (
        OSError, RuntimeError, ValueError, KeyError, IndexError, TypeError, EOFError, pickle.UnpicklingError,
        SafetensorError,
    ) as exc:  # what unpickling or loading damaged bytes raises
        raise EmbedderError(
            f"{path}: cannot load this checkpoint into open_clip model {model_name}: {_short(exc)}. "
            "The file may be truncated or damaged, or hold weights of another model; "
            "download it again (see weights/README.md)."
        ) from exc
    visual = clip_model.visual
    del clip_model  # keep only the image tower
    visual.eval()
    visual.requires_grad_(False)
    return visual


def _known_tags(model: str) -> list[str]:
    try:
        import open_clip
    except ImportError:  # pragma: no cover
        return []
    return list(open_clip.list_pretrained_tags_by_model(model))


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


_OPTIONS = ("checkpoint", "weights_dir", "device", "batch_size", "precision", "sha256")


def create_clip_embedder(arg: str | None = None, **options: Any) -> ClipEmbedder:
    """The ``clip`` engine's factory: ``arg`` is ``MODEL`` or ``MODEL/PRETRAINED``; ``options`` are in ``_OPTIONS``."""
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise EmbedderError(f"unknown option(s) for clip: {', '.join(unknown)}; valid: {', '.join(_OPTIONS)}")
    try:
        import open_clip  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise EmbedderError(f"the clip engine needs torch and open_clip_torch ({exc})") from exc
    model, tag = parse_clip_name(arg)
    options = {k: v for k, v in options.items() if v is not None}
    return ClipEmbedder(model, tag, **options)
