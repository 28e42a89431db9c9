"""OpenAI-compatible HTTP server and web page for face questions."""
