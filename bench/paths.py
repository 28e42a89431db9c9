"""Where the benches find the repository and the development data beside it."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository root
# Labelled faces (data/), FaceXBench's question files (facexbench/), published numbers (anchors/).
SHARED = Path(os.environ.get("FACELLM_SHARED", ROOT.parent / "shared"))
