"""Offline stand-ins for tests, demos and smoke tests: the tiny checkpoint factory."""

from facellm.testing.tiny_model import make_tiny_checkpoint

__all__ = ["make_tiny_checkpoint"]
