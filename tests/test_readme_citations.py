"""Every result file, benchmark script and example the README cites exists (a renamed or never-committed result
file had left readers with a dead reference)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def expand(name: str) -> list[str]:
    """``a.{b,c}.md`` -> ``a.b.md``, ``a.c.md`` (one brace group, as the README writes them)."""
    group = re.match(r"(.*)\{([^}]*)\}(.*)", name)
    return [group.group(1) + part + group.group(3) for part in group.group(2).split(",")] if group else [name]


def cited(text: str) -> set[str]:
    """The result files (names in benchmarks/results/), and other repository paths, that ``text`` cites."""
    names = {m.group(1).rstrip(".,)") for m in re.finditer(r"benchmarks/results/([\w.{},\-*]+)", text)}
    for m in re.finditer(r"`([^`\s]+\.md)`|\(([^)\s]+\.md)\)", text):
        name = next(g for g in m.groups() if g).split("](")[-1]
        names.add(name if "/" in name and not name.startswith("benchmarks/results/") else name.split("/")[-1])
    names |= {m.group(1) for m in re.finditer(r"((?:benchmarks|examples|\.ci)/[\w./\-]+\.(?:py|sh))", text)}
    names |= {"benchmarks/" + m.group(1) for m in re.finditer(r"(?<![/\w])(bench_\w+\.py)", text)}
    return {part for name in names for part in expand(name)}


def missing(names: set[str], root: Path, results: set[str]) -> list[str]:
    """The cited ``names`` found neither under ``root`` nor among ``results`` (``*`` a wildcard, ``...x`` a suffix)."""
    def found(name: str) -> bool:
        if "/" in name:
            return (root / name).exists()
        if name.startswith("..."):
            return any(r.endswith(name[3:]) for r in results)
        if "*" in name:
            pattern = re.compile(re.escape(name).replace(r"\*", ".*") + "$")
            return any(pattern.match(r) for r in results)
        return name in results
    return sorted(name for name in names if not found(name))


@pytest.mark.parametrize(("text", "expected"), [
    ("see `benchmarks/results/a.md` and `b.{x,y}.md`", {"a.md", "b.x.md", "b.y.md"}),
    ("([grocery.md](benchmarks/results/grocery.md))", {"grocery.md"}),
    ("`python benchmarks/bench_text.py --quick` and bench_scale.py", {"benchmarks/bench_text.py", "benchmarks/bench_scale.py"}),
    ("[weights/README.md](weights/README.md)", {"weights/README.md"}),
])
def test_cited(text, expected):
    assert cited(text) == expected


def test_missing_finds_a_dead_citation(tmp_path):
    assert missing({"a.md", "gone.md", "t.*.md", "...tail.md", "x/y.py"}, tmp_path, {"a.md", "t.1.md", "long_tail.md"}) \
        == ["gone.md", "x/y.py"]


def test_every_file_the_readme_cites_exists():
    names = cited((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(names) > 50  # the README cites many result files; a pattern that finds none would pass vacuously
    assert missing(names, ROOT, {p.name for p in RESULTS.iterdir()}) == []
