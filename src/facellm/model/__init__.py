"""Model layer: load image-text-to-text checkpoints and generate answers (batched or streamed)."""

from facellm.conversation import Conversation, GenerationSettings, Turn, question
from facellm.model.generate import choose_option, generate, stream
from facellm.model.loading import DEFAULT_MODEL, LoadedModel, load_model

__all__ = [
    "DEFAULT_MODEL",
    "Conversation",
    "GenerationSettings",
    "LoadedModel",
    "Turn",
    "choose_option",
    "generate",
    "load_model",
    "question",
    "stream",
]
