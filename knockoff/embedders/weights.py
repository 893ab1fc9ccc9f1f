"""Where model weights come from, and checksums.

This module only looks at files: it never imports torch or open_clip, so that ``auto`` can ask whether CLIP
weights are present without paying for a heavy import.

Search order for a model ``MODEL`` with pretrained tag ``TAG`` (see ``weights/README.md``):

1. an explicit checkpoint path (nothing else is searched when one is given);
2. an explicit weights directory (nothing else is searched when one is given), or else, in order,
   ``$KNOCKOFF_WEIGHTS_DIR``, the project's ``weights/`` directory and ``~/.cache/knockoff/weights``;
   in a directory the file is named ``MODEL__TAG.safetensors`` (or ``.bin``, ``.pt``, ``.pth``);
3. open_clip's own download in the Hugging Face hub cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or
   ``~/.cache/huggingface/hub``), when the file is already there;
4. a download through open_clip, only when ``KNOCKOFF_ALLOW_DOWNLOAD=1`` (done by the caller, which imports
   open_clip anyway).

A checkpoint listed in a manifest (the project's ``weights/manifest.json``, or a ``manifest.json`` beside the
file) with a sha256 is verified before it is loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knockoff.errors import EmbedderError, WeightsNotFoundError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"

#: Environment variable naming a directory of weights files.
ENV_WEIGHTS_DIR = "KNOCKOFF_WEIGHTS_DIR"
#: Set to ``1`` to let open_clip download missing weights from the Hugging Face hub.
ENV_ALLOW_DOWNLOAD = "KNOCKOFF_ALLOW_DOWNLOAD"

#: Extensions tried in a weights directory, in order (safetensors first: it cannot run code when loaded).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")

#: The file names open_clip uses in a Hugging Face hub repository (safetensors first, as open_clip does).
HF_FILENAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")

#: Fallback when the manifest is not shipped (an installed wheel): the hub repository of the default weights.
_DEFAULT_HF_HUB = {(DEFAULT_MODEL, DEFAULT_PRETRAINED): "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"}

_README_HINT = (
    "To get them: on a machine with internet, download the open_clip checkpoint (for example "
    "`hf download {hub} open_clip_model.safetensors --local-dir DIR`), copy it to a weights directory as "
    "{filename}, then set {env} to that directory or pass checkpoint=PATH; or set {allow}=1 on a connected "
    "machine to let open_clip download it. See weights/README.md."
)


@dataclass(frozen=True)
class WeightsSearch:
    """The outcome of looking for a checkpoint: the file found (or None), and every place looked at."""

    model: str
    pretrained: str
    path: Path | None
    source: str | None  # "checkpoint", "weights_dir", "env", "project", "user_cache", "hf_cache", "download"
    expected_sha256: str | None
    looked: tuple[str, ...]

    @property
    def found(self) -> bool:
        return self.path is not None


def weights_filename(model: str, pretrained: str, suffix: str = ".safetensors") -> str:
    """The file name a weights directory uses for ``model``/``pretrained``: ``MODEL__TAG.safetensors``."""
    return f"{model.replace('/', '-')}__{pretrained}{suffix}"


def project_weights_dir() -> Path:
    """The ``weights/`` directory beside the ``knockoff`` package (a source checkout)."""
    return Path(__file__).resolve().parents[2] / "weights"


def user_weights_dir() -> Path:
    return Path(os.path.expanduser("~")) / ".cache" / "knockoff" / "weights"


def hf_hub_cache_dir() -> Path:
    """The Hugging Face hub cache directory, resolved from the same variables huggingface_hub reads."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "huggingface" / "hub"


def search_dirs(weights_dir: str | os.PathLike[str] | None = None) -> list[tuple[str, Path]]:
    """The directories searched, in order, each with its source label."""
    if weights_dir is not None:
        return [("weights_dir", Path(weights_dir).expanduser())]
    dirs: list[tuple[str, Path]] = []
    env = os.environ.get(ENV_WEIGHTS_DIR)
    if env:
        dirs.append(("env", Path(env).expanduser()))
    dirs.append(("project", project_weights_dir()))
    dirs.append(("user_cache", user_weights_dir()))
    return dirs


# --- manifest -------------------------------------------------------------------------------------------------


def _read_manifest(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise EmbedderError(f"{path}: weights manifest is not valid JSON: {exc}") from exc
    entries = data.get("checkpoints") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise EmbedderError(f"{path}: weights manifest needs a 'checkpoints' list of objects")
    return entries


def manifest_entries(extra_dirs: Iterable[Path] = ()) -> list[dict[str, Any]]:
    """Known checkpoints: the project's ``weights/manifest.json``, then ``manifest.json`` in ``extra_dirs``."""
    entries = list(_read_manifest(project_weights_dir() / "manifest.json"))
    for directory in extra_dirs:
        if directory.resolve() != project_weights_dir():
            entries.extend(_read_manifest(directory / "manifest.json"))
    return entries


def hf_hub_id(model: str, pretrained: str, entries: Iterable[dict[str, Any]] | None = None) -> str | None:
    """The Hugging Face hub repository open_clip downloads ``model``/``pretrained`` from, when known here."""
    for entry in entries if entries is not None else manifest_entries():
        if entry.get("model") == model and entry.get("pretrained") == pretrained and entry.get("hf_hub"):
            return str(entry["hf_hub"]).rstrip("/")
    return _DEFAULT_HF_HUB.get((model, pretrained))


def expected_sha256(path: Path, model: str, pretrained: str, entries: Iterable[dict[str, Any]]) -> str | None:
    """The sha256 a manifest gives for this file (matched by file name), or None when unknown."""
    for entry in entries:
        sha = entry.get("sha256")
        if not sha:
            continue
        if entry.get("file") == path.name:
            return str(sha).lower()
        if (
            entry.get("hf_file") == path.name
            and entry.get("model") == model
            and entry.get("pretrained") == pretrained
        ):
            return str(sha).lower()
    return None


# --- checksums ------------------------------------------------------------------------------------------------

_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, cached in this process by (real path, size, modification time)."""
    real = os.path.realpath(path)
    st = os.stat(real)
    key = (real, st.st_size, st.st_mtime_ns)
    cached = _SHA_CACHE.get(key)
    if cached is None:
        digest = hashlib.sha256()
        with open(real, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                digest.update(chunk)
        cached = _SHA_CACHE[key] = digest.hexdigest()
    return cached


def verify_sha256(path: str | os.PathLike[str], expected: str | None) -> None:
    """Raise :class:`EmbedderError` when ``path`` does not have the ``expected`` sha256 (None: no check)."""
    if not expected:
        return
    actual = file_sha256(path)
    if actual != expected.lower():
        raise EmbedderError(
            f"{path}: checksum mismatch: sha256 is {actual}, expected {expected.lower()}. "
            "The file is damaged, incomplete or a different checkpoint; download it again (see weights/README.md)."
        )


# --- finding --------------------------------------------------------------------------------------------------


def _find_in_dir(directory: Path, model: str, pretrained: str) -> Path | None:
    for suffix in WEIGHT_SUFFIXES:
        candidate = directory / weights_filename(model, pretrained, suffix)
        if candidate.is_file():
            return candidate
    return None


def _find_in_hf_cache(hub_id: str) -> tuple[Path | None, Path]:
    """A file open_clip already downloaded for ``hub_id``; also returns the repo directory looked at."""
    repo_dir = hf_hub_cache_dir() / ("models--" + hub_id.replace("/", "--"))
    snapshots = repo_dir / "snapshots"
    revisions: list[Path] = []
    ref = repo_dir / "refs" / "main"
    if ref.is_file():
        revisions.append(snapshots / ref.read_text(encoding="utf-8").strip())
    if snapshots.is_dir():
        revisions.extend(sorted(p for p in snapshots.iterdir() if p.is_dir() and p not in revisions))
    for revision in revisions:
        for name in HF_FILENAMES:
            candidate = revision / name
            if candidate.is_file():
                return candidate, repo_dir
    return None, repo_dir


def download_allowed() -> bool:
    return os.environ.get(ENV_ALLOW_DOWNLOAD, "").strip().lower() in ("1", "true", "yes")


def find_weights(
    model: str,
    pretrained: str,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    weights_dir: str | os.PathLike[str] | None = None,
    hub_id: str | None = None,
) -> WeightsSearch:
    """Look for the checkpoint of ``model``/``pretrained`` on this machine, without downloading anything.

    An explicit ``checkpoint`` (or ``weights_dir``) is the only place searched when given.
    """

    def result(path: Path | None, source: str | None, looked: list[str], dirs: Iterable[Path] = ()) -> WeightsSearch:
        sha = expected_sha256(path, model, pretrained, manifest_entries(dirs)) if path is not None else None
        return WeightsSearch(model, pretrained, path, source, sha, tuple(looked))

    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        given = [f"{path} (checkpoint given explicitly)"]
        return result(path, "checkpoint", given, [path.parent]) if path.is_file() else result(None, None, given)

    looked: list[str] = []
    pattern = weights_filename(model, pretrained, "{" + ",".join(WEIGHT_SUFFIXES) + "}")
    if weights_dir is None and not os.environ.get(ENV_WEIGHTS_DIR):
        looked.append(f"${ENV_WEIGHTS_DIR} (not set)")
    for source, directory in search_dirs(weights_dir):
        looked.append(f"{directory / pattern} ({_SOURCE_LABELS[source]})")
        found = _find_in_dir(directory, model, pretrained)
        if found is not None:
            return result(found, source, looked, [directory])

    if weights_dir is None:
        hub_id = hub_id or hf_hub_id(model, pretrained)
        if hub_id:
            found, repo_dir = _find_in_hf_cache(hub_id)
            looked.append(f"{repo_dir}/snapshots/*/{{{','.join(HF_FILENAMES)}}} (open_clip's Hugging Face hub cache)")
            if found is not None:
                return result(found, "hf_cache", looked)
    return result(None, None, looked)


_SOURCE_LABELS = {
    "weights_dir": "weights_dir given explicitly; nothing else searched",
    "env": f"${ENV_WEIGHTS_DIR}",
    "project": "project weights/ directory",
    "user_cache": "user cache",
}


def not_found_error(model: str, pretrained: str, looked: Iterable[str], *, extra: str = "") -> WeightsNotFoundError:
    """The error raised when weights are missing: every place looked at, and how to get the weights."""
    places = "\n".join(f"  - {p}" for p in looked)
    hub = hf_hub_id(model, pretrained) or "<the open_clip hub repository of this model>"
    hint = _README_HINT.format(
        hub=hub, filename=weights_filename(model, pretrained), env=ENV_WEIGHTS_DIR, allow=ENV_ALLOW_DOWNLOAD
    )
    msg = f"no weights found for CLIP model {model} (pretrained {pretrained!r}). Looked in:\n{places}\n"
    if extra:
        msg += extra.rstrip() + "\n"
    msg += hint + " Without weights, use the weight-free engine: create_embedder('perceptual')."
    return WeightsNotFoundError(msg)


def weights_available(
    model: str = DEFAULT_MODEL, pretrained: str = DEFAULT_PRETRAINED, weights_dir: str | os.PathLike[str] | None = None
) -> bool:
    """True when the checkpoint of ``model``/``pretrained`` is on this machine (checks files only)."""
    try:
        return find_weights(model, pretrained, weights_dir=weights_dir).found
    except EmbedderError as exc:  # a broken manifest: weights cannot be used as they are
        log.warning("CLIP weights not usable: %s", exc)
        return False
