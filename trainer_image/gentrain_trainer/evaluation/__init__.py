"""Milestone evaluation: distribution metrics, feature extractors and pictures."""
