"""On top of the pipeline: metrics and calibration on labeled sets, the synthetic and real sets, the demo.

Modules: `metrics`, `synthetic`, `edits`, `realsets`, `demo`.
"""
