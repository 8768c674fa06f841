"""Honest evaluation: subject-grouped protocols, the field's metrics, reports and comparisons."""
