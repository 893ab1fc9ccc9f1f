"""Stage 4, deciding: the signals (pure functions), the policy (every setting), the decision rule and the
detector that runs a listing through match and decide.

Modules: `signals` (each check, hit/clear/unknown), `policy` (every setting, JSON), `rule` (the one function
that turns a match tier and the signals into verdict and risk), `verdict` (the typed results, to and from
results.jsonl), `detector` (decode, embed, search, verify, then the rule).
"""
