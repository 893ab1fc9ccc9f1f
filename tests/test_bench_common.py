"""benchmarks/common.py: the command a results file records."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

COMMON = Path(__file__).resolve().parents[1] / "benchmarks" / "common.py"


@pytest.fixture(scope="module")
def common():
    spec = importlib.util.spec_from_file_location("bench_common_under_test", COMMON)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("argv", "expected"), [
    ([str(COMMON.parent / "bench_text.py"), "--quick"], "python benchmarks/bench_text.py --quick"),
    (["benchmarks/bench_text_check.py"], "python benchmarks/bench_text_check.py"),
    ([str(COMMON.parent / "bench_text.py"), "--name", "a b"], "python benchmarks/bench_text.py --name 'a b'"),
    (["/elsewhere/x.py", "-v"], "python /elsewhere/x.py -v"),
    (["-c"], ""),
    ([], ""),
])
def test_command_line(common, monkeypatch, argv, expected):
    monkeypatch.chdir(COMMON.parents[1])
    assert common.command_line(argv) == expected


def test_results_record_the_command_they_ran_with(common, monkeypatch, tmp_path):
    monkeypatch.setattr(common, "provenance", lambda: {
        "date": "d", "machine": {"cpu": "c", "cpus_visible": 2, "python": "3"}, "git_commit": "x", "git_dirty": False,
        "versions": {"knockoff": "0", "faiss-cpu": "1", "imagehash": "2", "pdqhash": "3"}})
    monkeypatch.setattr(common.sys, "argv", [str(COMMON.parent / "bench_x.py"), "--quick"])
    _, md = common.write_results("x.quick", {"rows": []}, "body", results_dir=tmp_path)
    text = md.read_text(encoding="utf-8")
    assert "Command: `python benchmarks/bench_x.py --quick`" in text
    assert "written by benchmarks/bench_x.py" in text
    _, md = common.write_results("y", {"command": "given"}, "body", results_dir=tmp_path)
    assert "Command: `given`" in md.read_text(encoding="utf-8")


def test_results_carry_no_machine_paths(common, tmp_path):
    import tempfile

    root = COMMON.parents[1]
    data = {"data": str(root.parent / "shared" / "data" / "real"), "out": str(root / "benchmarks" / "out" / "x.json"),
            "scratch": str(Path(tempfile.gettempdir()) / "knockoff-bench-1" / "set")}
    json_path, md_path = common.write_results("t", data, f"read from `{data['data']}`", results_dir=tmp_path)
    text = json_path.read_text() + md_path.read_text()
    assert "../shared/data/real" in text and "./benchmarks/out/x.json" in text and "<tmp>/knockoff-bench-1/set" in text
    assert str(root) not in text and tempfile.gettempdir() + "/" not in text
