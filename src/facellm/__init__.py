"""facellm: build, train, evaluate and serve multimodal LLMs that understand faces.

One function per job, each typed and documented (`facellm.api`); they load their heavy parts only when called, so
`import facellm` stays cheap:

    import facellm
    facellm.analyze("face.jpg", attributes=True)                # faces, pose, quality, attributes
    facellm.verify("a.jpg", "b.jpg")                            # same person or not
    facellm.ask("face.jpg", "Is this person smiling?", model="specialist")
    facellm.evaluate("FaceXBench/benchmark", "runs/eval", model="specialist")
    facellm.build_dataset("faces/", "runs/data", labels="labels.csv")
    facellm.train("tiny-cpu")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facellm.api import (
        Answer,
        DatasetBuild,
        DatasetExport,
        Evaluation,
        FairFaceEvaluation,
        Overlap,
        PairsVerification,
        TrainSummary,
        Verification,
        analyze,
        ask,
        build_dataset,
        check_overlap,
        evaluate,
        evaluate_fairface,
        export_dataset,
        load,
        train,
        verify,
        verify_pairs,
    )

__all__ = [
    "Answer",
    "DatasetBuild",
    "DatasetExport",
    "Evaluation",
    "FairFaceEvaluation",
    "Overlap",
    "PairsVerification",
    "TrainSummary",
    "Verification",
    "analyze",
    "ask",
    "build_dataset",
    "check_overlap",
    "evaluate",
    "evaluate_fairface",
    "export_dataset",
    "load",
    "train",
    "verify",
    "verify_pairs",
]


def __getattr__(name: str) -> Any:
    """The public functions and result types, imported from `facellm.api` on first use."""
    if name in __all__:
        return getattr(importlib.import_module("facellm.api"), name)
    raise AttributeError(f"module 'facellm' has no attribute {name!r}")
