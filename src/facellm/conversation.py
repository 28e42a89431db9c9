"""The vocabulary every part speaks: conversation turns, generation settings and option letters.

It sits at the bottom of the package (it imports only `facellm.errors`), so models, backends, data, evaluation and
the server can all use it without importing one another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image

from facellm.errors import InputError

# Seeds torch.manual_seed accepts (a signed or unsigned 64-bit integer).
SEED_RANGE = (-(2**63), 2**64 - 1)


@dataclass
class Turn:
    """One message: a role ("system", "user" or "assistant"), its text and the images that come before the text."""

    role: str
    text: str
    images: list[Image.Image] = field(default_factory=list)


Conversation = list[Turn]


@dataclass
class GenerationSettings:
    """Decoding options. Greedy by default; `do_sample` turns on temperature/top-p sampling."""

    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}", "raise --max-new-tokens")
        if self.do_sample and self.temperature <= 0:
            raise InputError(f"temperature must be positive when sampling, got {self.temperature}", "use e.g. 0.7")
        if not 0 < self.top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {self.top_p}", "use e.g. 0.9")
        if self.seed is not None and not SEED_RANGE[0] <= self.seed <= SEED_RANGE[1]:
            raise InputError(
                f"seed must be an integer from {SEED_RANGE[0]} to {SEED_RANGE[1]}, got {self.seed}",
                "use a smaller seed",
            )


def question(images: Sequence[Image.Image], text: str) -> Conversation:
    """A one-turn conversation: the images, then the question."""
    return [Turn("user", text, list(images))]


def option_letters(count: int) -> list[str]:
    """A, B, C, ... for `count` options."""
    return [chr(ord("A") + i) for i in range(count)]
