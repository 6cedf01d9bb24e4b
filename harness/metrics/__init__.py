"""Measurements: pure functions over samples and dataclasses built with ``from_samples()``."""
