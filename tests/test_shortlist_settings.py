"""ShortlistSettings: the keypoint shortlist's index parameters are validated and survive a JSON round trip."""

from __future__ import annotations

import json

import pytest

from knockoff.decide.policy import Policy, ShortlistSettings
from knockoff.errors import PolicyError


@pytest.mark.parametrize(
    "field, value, message",
    [("compress_above", 0, "shortlist.compress_above"), ("nprobe", 0, "shortlist.nprobe"),
     ("pq_bytes", 0, "shortlist.pq_bytes"), ("pq_bytes", 129, "shortlist.pq_bytes"),
     ("pq_bytes", 8.5, "shortlist.pq_bytes")],
)
def test_bad_index_parameters_are_refused(field, value, message):
    with pytest.raises(PolicyError) as info:
        Policy.from_json(json.dumps({"shortlist": {field: value}}))
    assert message in str(info.value)


@pytest.mark.parametrize("field, value", [("compress_above", 10**7), ("nprobe", 64), ("pq_bytes", 16)])
def test_index_parameters_round_trip(field, value):
    policy = Policy(shortlist=ShortlistSettings(**{field: value}))
    assert Policy.from_json(policy.to_json()) == policy
    assert getattr(Policy.from_json(policy.to_json()).shortlist, field) == value
