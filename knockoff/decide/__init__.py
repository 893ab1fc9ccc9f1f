"""Stage 4, deciding: the signals (pure functions), the policy (every setting), the decision rule and the
detector that runs a listing through match and decide.

Modules: `signals`, `policy`, `detector`.
"""
