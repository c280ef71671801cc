"""Evaluation: datasets as JSONL, metrics (accuracy, macro-F1, calibration, coverage),
and an HTML report with a reliability diagram and a coverage-accuracy curve."""
