.PHONY: install check test demo

install:
	pip install -e ".[dev]"

check:
	ruff check src tests bench
	ruff format --check src tests bench

test:
	python -m pytest -q

demo:
	facellm dev make-tiny-model runs/tiny-model
	facellm ask src/facellm/samples/fairface/val_119.jpg -q "Describe this face." --model runs/tiny-model --max-new-tokens 32
