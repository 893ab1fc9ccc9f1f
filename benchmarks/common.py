"""Shared helpers of the benchmark scripts: provenance (machine, versions, date), hash baselines, and writing
results as JSON and Markdown into ``benchmarks/results/``."""

from __future__ import annotations

import json
import re
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS_DIR = HERE / "results"
REAL_DATA = REPO.parent / "shared" / "data" / "real"
"""Where the real public images live next to a checkout (see shared/data/real/SOURCES.md); may be absent."""

if str(REPO) not in sys.path:  # run as `python benchmarks/bench_x.py` from a checkout
    sys.path.insert(0, str(REPO))

_PACKAGES = ("knockoff", "numpy", "faiss-cpu", "pillow", "opencv-python-headless", "torch", "open_clip_torch",
             "imagehash", "pdqhash", "matplotlib")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance() -> dict[str, Any]:
    """Machine, package versions, date and git commit of a benchmark run."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True,
                                    text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cpus_visible": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "versions": versions,
        "git_commit": commit,
        "git_dirty": dirty,
    }


def _cell(value: Any) -> str:
    """A table cell: n/a for None, 3 decimals for small floats, none for large ones."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(out)


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that ran this benchmark, as it could be typed again from the repository root
    (``python benchmarks/bench_x.py --quick``)."""
    argv = list(sys.argv if argv is None else argv)
    if not argv or not argv[0] or argv[0] == "-c":
        return ""
    script = Path(argv[0])
    try:
        script = script.resolve().relative_to(REPO)
    except ValueError:
        pass
    return shlex.join(["python", str(script), *argv[1:]])


def portable(text: str) -> str:
    """``text`` without this machine's paths: the checkout becomes ``.``, the shared data folder beside it
    ``../shared`` and the temporary folder ``<tmp>`` (results files are committed and read on other machines)."""
    root = HERE.parent
    for path, label in ((root.parent / "shared", "../shared"), (root, "."), (Path(tempfile.gettempdir()), "<tmp>")):
        text = re.sub(r"(?<![\w.-])" + re.escape(str(path)) + r"(?![\w.-])", lambda _: label, text)  # whole paths
    return text


def write_results(name: str, data: dict[str, Any], markdown: str, results_dir: Path | None = None) -> tuple[Path, Path]:
    """Write ``<name>.json`` (data + provenance) and ``<name>.md`` into the results folder; returns both paths.
    The command recorded is ``data["command"]`` when given, else the command line this process was started with."""
    folder = Path(results_dir) if results_dir else RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    argv0 = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    data = {**data, "command": data.get("command") or command_line(),
            "script": data.get("script") or (argv0 if argv0.endswith(".py") else name)}
    info = provenance()
    json_path = folder / f"{name}.json"
    md_path = folder / f"{name}.md"
    json_path.write_text(portable(json.dumps({**info, **data}, indent=1, default=str)) + "\n", encoding="utf-8")
    machine = info["machine"]
    header = (
        f"<!-- written by benchmarks/{data['script']}; do not edit by hand -->\n"
        f"Run {info['date']} on {machine['cpu']} ({machine['cpus_visible']} CPUs visible), Python "
        f"{machine['python']}, knockoff {info['versions']['knockoff']} (commit {info['git_commit']}"
        f"{', uncommitted changes' if info['git_dirty'] else ''}), faiss {info['versions']['faiss-cpu']}, "
        f"imagehash {info['versions']['imagehash']}, pdqhash {info['versions']['pdqhash']}.\n"
        f"Command: `{data.get('command', '')}`\n\n"
    )
    md_path.write_text(portable(header + markdown.rstrip()) + "\n", encoding="utf-8")
    return json_path, md_path


# -- hash baselines ------------------------------------------------------------------------------------------

HashFn = Callable[[Image.Image], np.ndarray]


def _imagehash_fn(kind: str) -> HashFn:
    import imagehash

    fn = {"phash": imagehash.phash, "dhash": imagehash.dhash}[kind]
    return lambda image: np.asarray(fn(image).hash, dtype=bool).ravel()


def _pdq(image: Image.Image) -> np.ndarray:
    import pdqhash

    bits, _quality = pdqhash.compute(np.ascontiguousarray(np.asarray(image.convert("RGB"))))
    return np.asarray(bits, dtype=bool)


# Bits of each hash and its commonly used match threshold (Hamming distance <=):
# pHash/dHash 10 of 64 (imagededup's default max_distance_threshold), PDQ 31 of 256 (ThreatExchange's).
STANDARD_THRESHOLDS = {"phash": 10, "dhash": 10, "pdq": 31}


def hash_baselines() -> dict[str, HashFn]:
    """The baselines that are installed: pHash and dHash (imagehash), PDQ (pdqhash) when it imports."""
    out: dict[str, HashFn] = {}
    try:
        out["phash"] = _imagehash_fn("phash")
        out["dhash"] = _imagehash_fn("dhash")
    except ImportError:
        print("imagehash is not installed: pHash/dHash baselines skipped (pip install imagehash)", file=sys.stderr)
    try:
        import pdqhash  # noqa: F401

        out["pdq"] = _pdq
    except ImportError:
        print("pdqhash is not installed: PDQ baseline skipped (pip install pdqhash)", file=sys.stderr)
    return out


def hamming(queries: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Hamming distances (nq, nb) between boolean bit rows."""
    q = np.packbits(np.asarray(queries, dtype=bool), axis=1)
    b = np.packbits(np.asarray(base, dtype=bool), axis=1)
    x = np.bitwise_xor(q[:, None, :], b[None, :, :])
    return np.unpackbits(x, axis=2).sum(axis=2)


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
