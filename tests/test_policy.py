import json

import pytest

from knockoff.errors import PolicyError
from knockoff.decide.policy import EngineThresholds, Policy


@pytest.mark.parametrize(
    "kwargs",
    [{"top_k": 0}, {"verify_top": -1}, {"price_ratio": 1.5}, {"weights": {"REPLICA_TERMS": 2}},
     {"currency_rates": {"EUR": 0}}, {"min_risk_to_flag": -0.1}],
)
def test_invalid_policy_raises_value_error(kwargs):
    with pytest.raises(ValueError):
        Policy(**kwargs)


def test_thresholds_must_be_ordered():
    with pytest.raises(ValueError):
        EngineThresholds(near_copy=0.8, match=0.9, candidate=0.5)


def test_roundtrip_and_partial_file(tmp_path):
    policy = Policy(price_ratio=0.4, currency_rates={"eur": 1.1}).with_extra_replica_terms("factory seconds")
    loaded = Policy.load(policy.save(tmp_path / "p.json"))
    assert loaded == policy
    assert loaded.currency_rates["EUR"] == 1.1 and "factory seconds" in loaded.replica_terms
    (tmp_path / "partial.json").write_text(json.dumps({"engine_thresholds": {"clip": {"near_copy": 0.99, "match": 0.9, "candidate": 0.8}}}))
    partial = Policy.load(tmp_path / "partial.json")
    assert partial.thresholds_for("clip").near_copy == 0.99
    assert partial.thresholds_for("perceptual") == Policy().thresholds_for("perceptual")


@pytest.mark.parametrize("content, message", [("{oops", "line 1"), ("[]", "JSON object"), ('{"speed": 1}', "unknown key 'speed'")])
def test_bad_policy_file(tmp_path, content, message):
    (tmp_path / "p.json").write_text(content)
    with pytest.raises(PolicyError) as info:
        Policy.load(tmp_path / "p.json")
    assert "p.json" in str(info.value) and message in str(info.value)


def test_policy_is_frozen():
    with pytest.raises(AttributeError):
        Policy().top_k = 3
