.PHONY: install check test demo

install:
	pip install -e ".[dev]"

check:
	ruff check src tests bench
	ruff format --check src tests bench
	python -m mypy

test:
	python -m pytest -q

demo:
	facellm demo
