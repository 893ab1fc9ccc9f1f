"""Metrics against hand-computed values; evaluate, calibrate and the CLI end to end on a tiny synthetic set."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

from knockoff.cli.evaluate import add_eval_commands, size_to_arguments
from knockoff.evaluate.metrics import (
    ListingOutcome,
    average_precision,
    evaluate_set,
    operating_point,
    pr_curve,
    precision_recall_f1,
    rate_per_10k,
    roc_auc,
    roc_curve,
    save_plots,
    summarize,
)
from knockoff.decide.policy import Policy
from knockoff.evaluate.calibrate import calibrate

# A tiny example worked by hand: positives score 0.9, 0.8, 0.3; negatives 0.8 (tied with a positive), 0.1.
Y = [1, 0, 1, 1, 0]
S = [0.9, 0.8, 0.8, 0.3, 0.1]


@pytest.mark.parametrize(
    ("y", "s", "expected"),
    [
        # pairs (pos, neg): (.9,.8)=1 (.9,.1)=1 (.8,.8)=1/2 (.8,.1)=1 (.3,.8)=0 (.3,.1)=1 -> 4.5 / 6
        (Y, S, 0.75),
        ([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], 1.0),
        ([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9], 0.0),
        ([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5], 0.5),  # all tied
        ([1, 0, 0], [0.5, 0.5, 0.1], 0.75),  # (.5,.5)=1/2 (.5,.1)=1 -> 1.5 / 2
        ([1, 1, 1], [0.1, 0.2, 0.3], None),  # one class only
    ],
)
def test_roc_auc(y, s, expected):
    result = roc_auc(y, s)
    assert result == expected if expected is None else result == pytest.approx(expected)


@pytest.mark.parametrize(
    ("y", "s", "expected"),
    [
        # thresholds .9: P=1 R=1/3; .8: P=2/3 R=2/3; .3: P=3/4 R=1 -> 1/3 + 2/9 + 1/4 = 29/36
        (Y, S, 29 / 36),
        ([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], 1.0),
        ([0, 0, 1], [0.9, 0.8, 0.1], 1 / 3),
        ([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5], 0.5),  # one tied threshold: P=1/2 at R=1
        ([0, 0], [0.3, 0.4], None),
    ],
)
def test_average_precision(y, s, expected):
    result = average_precision(y, s)
    assert result == expected if expected is None else result == pytest.approx(expected)


def test_curves_group_ties():
    fpr, tpr, thresholds = roc_curve(Y, S)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 1, 1])
    assert thresholds[0] == math.inf and list(thresholds[1:]) == [0.9, 0.8, 0.3, 0.1]
    precision, recall, _ = pr_curve(Y, S)
    np.testing.assert_allclose(precision, [1, 2 / 3, 3 / 4, 3 / 5])
    np.testing.assert_allclose(recall, [1 / 3, 2 / 3, 1, 1])


def test_metric_inputs_are_checked():
    with pytest.raises(ValueError, match="length"):
        roc_auc([1, 0], [0.5])
    with pytest.raises(ValueError, match="finite"):
        average_precision([1, 0], [0.5, float("nan")])
    with pytest.raises(ValueError):
        precision_recall_f1(-1, 0, 0)


@pytest.mark.parametrize(
    ("tp", "fp", "fn", "expected"),
    [
        (8, 2, 2, (0.8, 0.8, 0.8)),
        (3, 1, 3, (0.75, 0.5, 0.6)),  # F1 = 2 * .75 * .5 / 1.25
        (0, 0, 5, (None, 0.0, None)),  # nothing flagged: precision undefined
        (0, 2, 0, (0.0, None, None)),  # no positive: recall undefined
        (0, 3, 4, (0.0, 0.0, 0.0)),
    ],
)
def test_precision_recall_f1(tp, fp, fn, expected):
    result = precision_recall_f1(tp, fp, fn)
    for got, want in zip(result, expected):
        assert got == want if want is None else got == pytest.approx(want)


@pytest.mark.parametrize(("count", "total", "expected"), [(1, 200, 50.0), (0, 7, 0.0), (3, 3, 10_000.0), (0, 0, None)])
def test_rate_per_10k(count, total, expected):
    assert rate_per_10k(count, total) == expected


def _o(label, verdict, risk, kind=None, product=None, matched=None, sim=None):
    return ListingOutcome(f"id{id(object())}-{label}-{kind}-{risk}", label, kind, product, verdict, risk, sim, matched)


def test_summarize_hand_computed():
    outcomes = [
        _o("counterfeit", "suspect", 0.9, "copy-crop", "p1", "p1", 0.95),
        _o("counterfeit", "suspect", 0.7, "copy-crop", "p2", "p1", 0.91),  # flagged, wrong product
        _o("counterfeit", "no_match", 0.0, "own-photo", "p2", "p3", 0.40),
        _o("counterfeit", "authorized", 0.1, "own-photo", "p3", "p3", 0.93),
        _o("genuine", "suspect", 0.7, "genuine-copy", "p1", "p1", 0.97),  # a false flag
        _o("genuine", "authorized", 0.1, "genuine-copy", "p2", "p2", 0.96),
        _o("unrelated", "authorized", 0.1, "unrelated", None, "p1", 0.90),  # a false match, not a flag
        _o("unrelated", "no_match", 0.0, "unrelated", None, "p2", 0.20),
        _o("unrelated", "no_match", 0.0, "unrelated", None, None, None),
        _o("unrelated", "error", 0.0, "unrelated", None, None, None),
    ]
    r = summarize(outcomes, scan_seconds=2.0)
    assert (r.tp, r.fp, r.fn) == (2, 1, 2)
    assert r.precision == pytest.approx(2 / 3) and r.recall == pytest.approx(0.5)
    assert r.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert r.false_flags_per_10k_genuine == pytest.approx(5000.0)
    assert r.false_flags_per_10k_unrelated == 0.0
    assert r.false_matches_per_10k_unrelated == pytest.approx(2500.0)
    # product accuracy over the 6 listings with a product id: right and matched for p1, p3, p1, p2
    assert r.top1_accuracy == pytest.approx(4 / 6)
    assert r.top1_retrieval == pytest.approx(4 / 6)
    assert r.recall_by_kind == {"copy-crop": 1.0, "own-photo": 0.0}
    assert r.errors == 1 and r.n_listings == 10 and r.listings_per_second == pytest.approx(5.0)
    # risk ranking: positives 0.9, 0.7, 0.0, 0.1 vs negatives 0.7, 0.1, 0.1, 0, 0, 0
    # pairs won: .9 -> 6; .7 -> 5 + 1/2 tie; .1 -> 3 + 2 * 1/2; 0 -> 3 * 1/2 -> 17 / 24
    assert r.roc_auc == pytest.approx(17 / 24)
    assert r.label_counts == {"counterfeit": 4, "genuine": 2, "unrelated": 4}
    assert r.confusion["unrelated"] == {"authorized": 1, "error": 1, "no_match": 2}
    rows = {(k.kind, k.label): k for k in r.per_kind}
    assert rows[("copy-crop", "counterfeit")].right_product == 1
    assert rows[("unrelated", "unrelated")].matched == 1
    json.dumps(r.to_dict())  # serializable
    assert "precision" in r.format_table()


def test_a_set_without_negatives_has_no_precision_and_its_plots_do_not_crash(tmp_path):
    outcomes = [_o("counterfeit", "suspect", 0.9, sim=0.95), _o("counterfeit", "no_match", 0.0, sim=0.5)]
    r = summarize(outcomes, engine="perceptual", policy=Policy().to_dict())
    assert r.precision is None and r.f1 is None and r.pr_auc is None and r.roc_auc is None
    assert r.recall == pytest.approx(0.5)
    precision_line = next(line for line in r.format_table().splitlines() if line.startswith("precision"))
    assert "n/a" in precision_line and "none could be flagged wrongly" in precision_line
    written = save_plots(r, tmp_path)  # pr_auc None used to crash here (format of None)
    assert sorted(p.name for p in written) == ["pr.png", "similarity.png"]  # no ROC without negatives


@pytest.mark.parametrize(("labels_flags", "expected"), [
    # (label, flagged) -> (false positive rate, recall, precision)
    ([("counterfeit", True), ("counterfeit", False), ("genuine", True), ("unrelated", False)], (0.5, 0.5, 0.5)),
    ([("counterfeit", True), ("genuine", False)], (0.0, 1.0, 1.0)),
    ([("counterfeit", True), ("counterfeit", True)], (None, 1.0, None)),
    ([("genuine", False), ("unrelated", True)], (0.5, None, 0.0)),
])
def test_operating_point(labels_flags, expected):
    outcomes = [_o(label, "suspect" if flagged else "no_match", 0.8 if flagged else 0.0)
                for label, flagged in labels_flags]
    assert operating_point(summarize(outcomes)) == expected


def test_plots_mark_the_policys_operating_point_and_thresholds():
    from knockoff.evaluate.metrics import pr_figure, roc_figure, similarity_figure

    outcomes = [_o("counterfeit", "suspect", 0.9, sim=0.95), _o("counterfeit", "no_match", 0.0, sim=0.5),
                _o("genuine", "authorized", 0.1, sim=0.93), _o("unrelated", "suspect", 0.6, sim=0.85)]
    policy = Policy()
    r = summarize(outcomes, engine="perceptual", policy=policy.to_dict())
    positive, risks = [o.label == "counterfeit" for o in outcomes], [o.risk for o in outcomes]

    def dots(fig) -> list[tuple[float, float]]:
        return [(float(line.get_xdata()[0]), float(line.get_ydata()[0])) for line in fig.axes[0].lines
                if line.get_marker() == "o"]

    assert dots(roc_figure(r, positive, risks)) == [(0.5, 0.5)]  # fpr 1/2, recall 1/2
    assert dots(pr_figure(r, positive, risks)) == [(0.5, 0.5)]  # recall 1/2, precision 1/2
    legend = [t.get_text() for t in roc_figure(r, positive, risks).axes[0].get_legend().get_texts()]
    assert legend == [f"policy (min_risk_to_flag {policy.min_risk_to_flag:.2f})"]
    t = policy.thresholds_for("perceptual")
    lines = {float(line.get_xdata()[0]) for line in similarity_figure(r).axes[0].lines}
    assert lines == {t.near_copy, t.match, t.candidate}
    assert not similarity_figure(summarize(outcomes, engine="perceptual")).axes[0].lines  # no policy, no lines


# -- end to end ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    from knockoff.evaluate.synthetic import make_labeled_set

    root = tmp_path_factory.mktemp("evalset") / "set"
    make_labeled_set(root, n_brands=2, products_per_brand=1, listings_per_product=3, n_unrelated=3, seed=3,
                     image_size=192, edit_kinds=("crop", "jpeg-30", "border", "watermark-text"))
    return root


@pytest.mark.slow
def test_evaluate_set_end_to_end(tiny_set, tmp_path):
    out = tmp_path / "m" / "metrics.json"
    report = evaluate_set(tiny_set, "perceptual", out=out, plot_dir=tmp_path / "plots")
    assert report.engine == "perceptual"
    assert report.n_listings == 9 and report.label_counts == {"counterfeit": 4, "genuine": 2, "unrelated": 3}
    assert report.errors == 0
    # edited copies of official photos are what the perceptual engine is built for
    assert report.recall is not None and report.recall >= 0.75
    assert report.precision == 1.0
    assert report.false_flags_per_10k_unrelated == 0.0
    assert report.listings_per_second and report.listings_per_second > 0
    data = json.loads(out.read_text())
    assert data["n_listings"] == 9 and len(data["outcomes"]) == 9
    assert sorted(Path(p).name for p in report.plots) == ["pr.png", "roc.png", "similarity.png"]
    assert all(Path(p).stat().st_size > 1000 for p in report.plots)


@pytest.mark.slow
def test_calibrate_reaches_target_on_its_own_set(tiny_set, tmp_path):
    result = calibrate(tiny_set, "perceptual", 0.99)
    assert result.met_target
    assert result.expected_precision is not None and result.expected_precision >= 0.99
    assert result.n_holdout == 0 and result.holdout_precision is None
    t = result.policy.thresholds_for("perceptual")
    assert t.candidate <= t.match <= t.near_copy
    path = result.policy.save(tmp_path / "policy.json")
    loaded = Policy.load(path)
    assert loaded == result.policy
    # the thresholds chosen by simulation give the same figures in the real pipeline
    report = evaluate_set(tiny_set, "perceptual", policy=loaded)
    assert report.precision == pytest.approx(result.expected_precision)
    assert report.recall == pytest.approx(result.expected_recall)


def test_calibrate_checks_arguments(tiny_set):
    with pytest.raises(ValueError, match="target_precision"):
        calibrate(tiny_set, "perceptual", 1.5)
    with pytest.raises(ValueError, match="holdout"):
        calibrate(tiny_set, "perceptual", 0.9, holdout=1.0)


# -- the CLI ------------------------------------------------------------------------------------------------


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="knockoff")
    add_eval_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize(("size", "brands", "unrelated"), [(46, 4, 9), (10, 1, 2), (200, 18, 40)])
def test_size_to_arguments(size, brands, unrelated):
    args = size_to_arguments(size)
    assert (args["n_brands"], args["n_unrelated"]) == (brands, unrelated)
    with pytest.raises(ValueError):
        size_to_arguments(2)


@pytest.mark.slow
def test_cli_make_set_evaluate_calibrate(tmp_path, capsys):
    set_dir = tmp_path / "set"
    assert _run_cli(["make-set", str(set_dir), "--size", "12", "--seed", "1", "--difficulty", "hard",
                     "--image-size", "160"]) == 0
    assert (set_dir / "listings.csv").is_file()
    metrics = tmp_path / "metrics.json"
    assert _run_cli(["evaluate", str(set_dir), "--engine", "perceptual", "--out", str(metrics)]) == 0
    assert "precision" in capsys.readouterr().out
    assert json.loads(metrics.read_text())["engine"] == "perceptual"
    policy = tmp_path / "policy.json"
    code = _run_cli(["calibrate", str(set_dir), "--engine", "perceptual", "--target-precision", "0.9",
                     "--out", str(policy), "--holdout", "0.3"])
    assert code in (0, 1)
    Policy.load(policy)
    assert "held-out" in capsys.readouterr().out


def test_cli_wired_into_knockoff_main():
    from knockoff.cli import app as cli

    parser = cli.build_parser()
    choices = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    if "evaluate" not in choices:
        pytest.skip("knockoff.cli.app does not call add_eval_commands yet")
    assert {"evaluate", "calibrate", "make-set"} <= set(choices)
