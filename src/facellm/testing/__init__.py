"""Test doubles: a mock OpenAI-compatible endpoint, a test HTTP server, hostile inputs and stand-in FaceXBench
folders. Nothing the product runs depends on them (the tiny checkpoint factory is `facellm.model.tiny`)."""
