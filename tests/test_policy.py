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


# -- one config: every setting, nested, validated, JSON round trip ---------------------------------------------

from dataclasses import fields, replace  # noqa: E402

from knockoff.decide.policy import ImageSettings, RiskSettings, ShortlistSettings, TextSettings  # noqa: E402
from knockoff.match.verify import PackagingSettings, VerifierSettings  # noqa: E402

_NESTED = {"risk": RiskSettings, "verifier": VerifierSettings, "packaging": PackagingSettings,
           "shortlist": ShortlistSettings, "images": ImageSettings, "text": TextSettings}
_TEXT_GROUPS = ("read", "match")  # text's own nested groups


def _changed(value):
    """A valid value other than ``value`` (the defaults' types)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 0.9 if value > 0 else 0.05
    if value == "auto":
        return 5
    if value == "int8":  # text.read.models
        return "full"
    if value is None:
        return 1000
    raise AssertionError(f"no changed value for {value!r}")


_TOP = [
    ("engine_thresholds", {"perceptual": EngineThresholds(0.92, 0.85, 0.6, True)}),
    ("top_k", 5), ("verify_top", 0), ("price_ratio", 0.3), ("currency_rates", {"USD": 1.0, "SEK": 0.09}),
    ("replica_terms", ("copy", "dupe")), ("weights", {"REPLICA_TERMS": 0.2}), ("min_risk_to_flag", 0.4),
    ("packaging_match", False),
]
_NESTED_FIELDS = [(name, f.name) for name, cls in _NESTED.items() for f in fields(cls)
                  if f.name != "tier_confidence" and not (name == "text" and f.name in _TEXT_GROUPS)
                  ] + [("risk", "tier_confidence")]
_TEXT_FIELDS = [(group, f.name) for group in _TEXT_GROUPS for f in fields(getattr(TextSettings(), group))]


def test_every_policy_field_is_covered_by_the_round_trip_tests():
    assert {name for name, _ in _TOP} | set(_NESTED) == {f.name for f in fields(Policy)}


@pytest.mark.parametrize("name, value", _TOP, ids=[n for n, _ in _TOP])
def test_top_level_field_round_trips_through_json(name, value):
    policy = replace(Policy(), **{name: value})
    assert policy != Policy()
    assert Policy.from_json(policy.to_json()) == policy


@pytest.mark.parametrize("group, name", _NESTED_FIELDS, ids=[f"{g}.{n}" for g, n in _NESTED_FIELDS])
def test_nested_field_round_trips_through_json(group, name):
    settings = getattr(Policy(), group)
    value = {"same-package": 0.7} if name == "tier_confidence" else _changed(getattr(settings, name))
    policy = replace(Policy(), **{group: replace(settings, **{name: value})})
    assert policy != Policy()
    assert Policy.from_json(policy.to_json()) == policy
    partial = Policy.from_json(json.dumps({group: {name: json.loads(policy.to_json())[group][name]}}))
    assert partial == policy  # a file holding only that key gives the same policy


@pytest.mark.parametrize("group, name", _TEXT_FIELDS, ids=[f"text.{g}.{n}" for g, n in _TEXT_FIELDS])
def test_text_field_round_trips_through_json(group, name):
    inner = getattr(Policy().text, group)
    changed = replace(inner, **{name: _changed(getattr(inner, name))})
    policy = replace(Policy(), text=replace(Policy().text, **{group: changed}))
    assert policy != Policy()
    assert Policy.from_json(policy.to_json()) == policy
    value = json.loads(policy.to_json())["text"][group][name]
    assert Policy.from_json(json.dumps({"text": {group: {name: value}}})) == policy


@pytest.mark.parametrize(
    "data, message",
    [
        ({"verifer": {}}, "unknown key 'verifer'; did you mean 'verifier'?"),
        ({"verifier": {"min_inlers": 20}}, "unknown key 'verifier.min_inlers'; did you mean 'min_inliers'?"),
        ({"packaging": {"min_margn": 2}}, "did you mean 'min_margin'?"),
        ({"engine_thresholds": {"clip": {"near_cop": 0.9}}}, "'engine_thresholds.clip.near_cop'"),
        ({"weights": {"REPLICA": 0.2}}, "did you mean 'REPLICA_TERMS'?"),
        ({"risk": {"tier_confidence": {"same-packaging": 0.5}}}, "did you mean 'same-package'?"),
        ({"top_k": "3"}, "top_k must be an integer"),
        ({"verifier": {"min_inliers": 2}}, "min_inliers must be an integer >= 4"),
        ({"shortlist": {"size": "many"}}, "shortlist.size"),
        ({"images": {"max_side": 8}}, "images.max_side"),
        ({"risk": {"floor": 1.0}}, "risk.floor"),
        ({"verifier": 3}, "verifier must be a JSON object"),
        ({"replica_terms": "dupe"}, "replica_terms must be a list"),
    ],
)
def test_policy_errors_name_the_key(data, message):
    with pytest.raises(PolicyError) as info:
        Policy.from_json(json.dumps(data))
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_removed_key_is_refused_with_the_reason():
    from knockoff.errors import PolicyError

    with pytest.raises(PolicyError, match=r"shortlist.max_references' is no longer read: .*no size cap"):
        Policy.from_dict({"shortlist": {"max_references": 5000}})
