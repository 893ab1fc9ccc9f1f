"""decisions.csv: the reviewers' marks exported by the page, read back and used as labels."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest

from knockoff.cli import main
from knockoff.decide.signals import Signal
from knockoff.decide.verdict import Match, Verdict
from knockoff.errors import ConfigError, KnockoffError, LabeledSetError
from knockoff.evaluate.decisions import label_of, labeled_outcomes
from knockoff.report.decisions import Decision, DecisionsError, read_decisions

HEADER = "listing_id,decision,note,when\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "decisions.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("row, field, problem", [
    (",counterfeit,,", "listing_id", "is empty"),
    ("L1,,,", "decision", "is empty"),
    ("L1,fake,,", "decision", "'fake' is not one of"),
    ("L1,counterfeit,,yesterday", "when", "not an ISO 8601 time"),
])
def test_a_bad_row_names_file_line_and_field(tmp_path, row, field, problem):
    path = _write(tmp_path, HEADER + "L0,unsure,,\n" + row + "\n")
    with pytest.raises(DecisionsError) as caught:
        read_decisions(path, strict=True)
    assert caught.value.line == 3 and caught.value.field == field and problem in caught.value.problem
    assert str(path) in str(caught.value) and isinstance(caught.value, KnockoffError)


def test_bad_rows_are_skipped_and_reported_unless_strict(tmp_path, caplog):
    path = _write(tmp_path, HEADER + "L1,counterfeit,,\nL2,maybe,,\nL3,Not Counterfeit,,\n")
    with caplog.at_level(logging.WARNING, logger="knockoff.report.decisions"):
        decisions = read_decisions(path)
    assert {k: d.decision for k, d in decisions.by_listing.items()} == {"L1": "counterfeit", "L3": "not_counterfeit"}
    assert len(decisions.problems) == 1 and "line 3" in decisions.problems[0] and "line 3" in caplog.text


@pytest.mark.parametrize("text, problem", [
    ("id,decision\nL1,unsure\n", "missing column(s) listing_id"),
    ("", "missing column(s) listing_id, decision"),
])
def test_a_bad_header_is_always_an_error(tmp_path, text, problem):
    with pytest.raises(DecisionsError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        read_decisions(_write(tmp_path, text))


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(DecisionsError, match="cannot read file"):
        read_decisions(tmp_path / "nope.csv")


def test_latest_decision_wins_and_formula_guard_is_undone(tmp_path):
    path = _write(tmp_path, HEADER
                  + "L1,counterfeit,first,2026-12-01T10:00:00.000Z\n"
                  + "L1,unsure,earlier,2026-12-01T09:00:00.000Z\n"
                  + "'=L2,not_counterfeit,\"'=cmd, \"\"q\"\"\",\n"
                  + "L3,unsure,'plain quote,\n")
    decisions = read_decisions(path, strict=True)
    assert decisions.by_listing["L1"].note == "first" and decisions.by_listing["L1"].when.hour == 10
    assert decisions.by_listing["=L2"].note == '=cmd, "q"' and decisions.by_listing["=L2"].when is None
    assert decisions.by_listing["L3"].note == "'plain quote"  # only a guarded formula loses its quote


@pytest.mark.parametrize("decision", ["", "fake"])
def test_decision_is_validated(decision):
    with pytest.raises(ValueError):
        Decision("L1", decision)


@pytest.mark.parametrize("decision, verdict, match, label", [
    ("counterfeit", "no_match", None, "counterfeit"),
    ("not_counterfeit", "suspect", {"brand": "A"}, "genuine"),
    ("not_counterfeit", "review", {"brand": "A"}, "genuine"),
    ("not_counterfeit", "no_match", {"brand": "A"}, "unrelated"),  # a nearest reference is not a match
    ("unsure", "suspect", {"brand": "A"}, None),
])
def test_label_of_a_decision(decision, verdict, match, label):
    result = Verdict("L", verdict, 0.5, _match(match["brand"], "p", 0.9) if match else None, ())
    assert label_of(Decision("L", decision), result) == label


def _match(brand: str, product: str, similarity: float, verification: dict | None = None) -> Match:
    return Match(brand, product, f"{brand} {product}", "ref.png", f"{brand}/ref.png", similarity,
                 "near-copy" if similarity >= 0.9 else "same-product", "photo.jpg", verification=verification)


def _visual(verified: bool) -> Signal:
    return Signal("VISUAL_MATCH", "hit", "photo matches", {"tier": "near-copy", "similarity": 0.95,
                                                            "verified": verified, "same_package": False})


def _results(tmp_path: Path) -> Path:
    out = tmp_path / "scan"
    out.mkdir()
    seller = Signal("UNAUTHORIZED_SELLER", "hit", "seller x is not authorized")
    verdicts = [
        Verdict("A", "suspect", 0.9, _match("B", "p", 0.95, {"verified": True}), (), (_visual(True), seller)),
        Verdict("B", "authorized", 0.1, _match("B", "p", 0.8), ()),
        Verdict("C", "suspect", 0.7, _match("B", "q", 0.9), ()),
        Verdict("D", "no_match", 0.0, None, ()),
    ]
    (out / "results.jsonl").write_text("".join(json.dumps({"schema": 2, **v.to_dict()}) + "\n" for v in verdicts),
                                       encoding="utf-8")
    return out


def test_labeled_outcomes_join_results_and_decisions(tmp_path):
    from knockoff.report import read_results

    out = _results(tmp_path)
    path = _write(tmp_path, HEADER + "A,counterfeit,,\nB,not_counterfeit,,\nC,not_counterfeit,,\nD,unsure,,\n"
                  "Z,counterfeit,,\n")
    labels = labeled_outcomes(read_results(out), read_decisions(path))
    assert {o.listing_id: o.label for o in labels.outcomes} == {"A": "counterfeit", "B": "genuine", "C": "genuine"}
    a = next(o for o in labels.outcomes if o.listing_id == "A")
    assert a.verified and a.risk_codes == ("UNAUTHORIZED_SELLER",) and a.flagged
    assert labels.unsure == 1 and labels.unknown_listings == ("Z",)


def test_cli_evaluate_a_scan_against_decisions(tmp_path, capsys):
    out = _results(tmp_path)
    path = _write(tmp_path, HEADER + "A,counterfeit,,\nB,not_counterfeit,,\nC,not_counterfeit,,\nD,unsure,,\n")
    assert main(["evaluate", str(out), "--decisions", str(path), "--out", str(tmp_path / "m.json")]) == 0
    text = capsys.readouterr().out
    assert "3 decided listings used as labels; 1 marked unsure left out" in text
    figures = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert (figures["tp"], figures["fp"], figures["fn"]) == (1, 1, 0)  # C was flagged, the reviewer said genuine


def test_cli_evaluate_decisions_without_negatives_plots_and_says_na(tmp_path, capsys):
    out = _results(tmp_path)
    path = _write(tmp_path, HEADER + "A,counterfeit,,\nC,counterfeit,,\nD,counterfeit,,\n")
    plots = tmp_path / "plots"
    assert main(["evaluate", str(out), "--decisions", str(path), "--plot", str(plots)]) == 0
    text = capsys.readouterr().out
    precision = next(line for line in text.splitlines() if line.startswith("precision"))
    assert "n/a" in precision and "recall" in text
    assert sorted(p.name for p in plots.iterdir()) == ["pr.png", "similarity.png"]


# -- calibrate --decisions: a team's marks on a scan tune the policy ---------------------------------------------


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> dict:
    """A small generated set, its index and a scan of it with the default policy."""
    from knockoff.evaluate.synthetic import make_labeled_set

    root = tmp_path_factory.mktemp("decided")
    make_labeled_set(root / "set", n_brands=2, products_per_brand=2, listings_per_product=3, n_unrelated=4, seed=3,
                     image_size=160, edit_kinds=("crop", "jpeg-30", "border", "watermark-text"))
    assert main(["index", "build", str(root / "set"), "--out", str(root / "index"), "--engine", "perceptual"]) == 0
    _scan(root, root / "out")
    with (root / "set" / "listings.csv").open(encoding="utf-8", newline="") as handle:
        truth = {r["listing_id"]: r["label"] == "counterfeit" for r in csv.DictReader(handle)}
    return {"root": root, "out": root / "out", "truth": truth}


def _scan(root: Path, out: Path, policy: Path | None = None) -> dict[str, str]:
    argv = ["scan", str(root / "set"), "--index", str(root / "index"), "--out", str(out), "--workers", "0",
            "--no-progress", "--no-report"]
    assert main(argv + (["--policy", str(policy)] if policy else [])) in (0, 1)
    from knockoff.report import read_results

    return {v.listing_id: v.verdict for v in read_results(out)}


def _decisions_file(path: Path, positive: dict[str, bool], extra: str = "") -> Path:
    rows = "".join(f"{i},{'counterfeit' if p else 'not_counterfeit'},,\n" for i, p in positive.items())
    path.write_text(HEADER + rows + extra, encoding="utf-8")
    return path


def _precision(verdicts: dict[str, str], positive: dict[str, bool]) -> float:
    flagged = [i for i in positive if verdicts[i] == "suspect"]
    return sum(positive[i] for i in flagged) / len(flagged)


def _calibrate_cli(scanned: dict, decisions: Path, name: str, capsys) -> tuple[Path, dict]:
    policy, report = scanned["root"] / f"{name}.json", scanned["root"] / f"{name}-report.json"
    code = main(["calibrate", str(scanned["out"]), "--decisions", str(decisions), "--target-precision", "1.0",
                 "--out", str(policy), "--report", str(report)])
    assert code == 0, capsys.readouterr()
    return policy, json.loads(report.read_text(encoding="utf-8"))


def test_calibrate_on_decisions_reaches_the_target_in_a_new_scan(scanned, tmp_path, capsys):
    truth = dict(scanned["truth"])
    unsure = next(iter(truth))
    del truth[unsure]
    decisions = _decisions_file(tmp_path / "decisions.csv", truth, f"{unsure},unsure,,\nNOT-IN-SCAN,counterfeit,,\n")
    policy, figures = _calibrate_cli(scanned, decisions, "truth", capsys)
    assert figures["met_target"] and figures["n_fit"] == len(truth)
    assert any("1 marked unsure left out" in n for n in figures["notes"])
    assert any("1 decided listings are not in these results" in n for n in figures["notes"])
    verdicts = _scan(scanned["root"], tmp_path / "again", policy)  # the real pipeline, with the chosen policy
    assert _precision(verdicts, truth) >= 1.0
    recall = sum(verdicts[i] == "suspect" for i, p in truth.items() if p) / sum(truth.values())
    assert recall == pytest.approx(figures["expected_recall"])


def test_decisions_that_contradict_the_scan_move_the_thresholds(scanned, tmp_path, capsys):
    truth = dict(scanned["truth"])
    _, agreed = _calibrate_cli(scanned, _decisions_file(tmp_path / "agree.csv", truth), "agree", capsys)
    before = _scan(scanned["root"], scanned["out"])  # unchanged: the scan is resumed, nothing redecided
    from knockoff.report import read_results

    risks = {v.listing_id: v.risk for v in read_results(scanned["out"])}
    flagged = sorted((risks[i], i) for i, p in truth.items() if p and before[i] == "suspect")
    overruled = flagged[0][1]  # the reviewers say the least risky flagged counterfeit is genuine after all
    truth[overruled] = False
    policy, moved = _calibrate_cli(scanned, _decisions_file(tmp_path / "overrule.csv", truth), "overrule", capsys)
    assert moved["thresholds"] != agreed["thresholds"]
    verdicts = _scan(scanned["root"], tmp_path / "again", policy)
    assert verdicts[overruled] != "suspect" and _precision(verdicts, truth) >= 1.0


def test_calibrate_on_decisions_refuses_a_policy_the_scan_did_not_use(scanned, tmp_path):
    from knockoff.decide.policy import EngineThresholds, Policy
    from knockoff.evaluate.decisions import calibrate_on_decisions
    from knockoff.report import read_results

    unmatched = [v.match.similarity for v in read_results(scanned["out"]) if v.match and v.match.tier is None]
    low = round(min(unmatched) - 0.01, 4)  # would have matched a listing the scan left unmatched
    other = Policy().with_thresholds("perceptual", EngineThresholds(0.9, low, min(low, 0.55), False))
    decisions = read_decisions(_decisions_file(tmp_path / "d.csv", scanned["truth"]))
    with pytest.raises(ConfigError, match="pass the policy the scan used"):
        calibrate_on_decisions(scanned["out"], decisions, 0.99, base_policy=other)
    only_unsure = read_decisions(_write(tmp_path, HEADER + "L0001,unsure,,\n"))
    with pytest.raises(LabeledSetError, match="no listing of these results is marked"):
        calibrate_on_decisions(scanned["out"], only_unsure, 0.99)
