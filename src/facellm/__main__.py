"""`python -m facellm ...` runs the `facellm` command (what `accelerate launch -m facellm train ...` needs)."""

from facellm.cli import main

if __name__ == "__main__":
    main()
