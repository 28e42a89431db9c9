"""The library's front door: one typed function per job. Each command of `facellm` parses its flags, calls one of
these and prints what it returns; a notebook calls them directly (`import facellm`).

Images may be given as a path, raw bytes or an opened PIL image. Models may be given by name (a hub id, a local
folder, `specialist`), as a `BackendSpec` (an OpenAI-compatible endpoint, a batch size...), or as a backend already
built, so that a notebook loads a model once and asks it many questions. Heavy parts (torch, transformers, dlib)
load when a function is first called.
"""

from facellm.api.answers import Answer, Model, ask, load
from facellm.api.data import DatasetBuild, DatasetExport, build_dataset, export_dataset
from facellm.api.evaluation import (
    Evaluation,
    FairFaceEvaluation,
    FairFaceTask,
    Overlap,
    RunCounts,
    check_overlap,
    evaluate,
    evaluate_fairface,
)
from facellm.api.faces import PairsVerification, Verification, analyze, verify, verify_pairs
from facellm.api.training import TrainSummary, train

__all__ = [
    "Answer",
    "DatasetBuild",
    "DatasetExport",
    "Evaluation",
    "FairFaceEvaluation",
    "FairFaceTask",
    "Model",
    "Overlap",
    "PairsVerification",
    "RunCounts",
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
