"""Attribute predictors (FairFace age group, gender, race): dlib's face descriptor network, fine-tuned.

Each face is aligned on its 68 landmarks into dlib's 150 px chip (0.25 margin: FairFace's own crop, so a face from
any photo looks like the images the network was trained on). The chip goes through dlib's ResNet (its weights run in
torch, see `descriptor_net`): the first FROZEN levels as dlib trained them on about 3 million faces, the last levels
fine-tuned on FairFace train (`facellm faces train-attributes`), then one head per attribute. Only the fine-tuned
levels and the heads are shipped (half precision, with a model card). Predictions are probabilities over FairFace's
classes, averaged over the face and its mirror image.
(Earlier versions on FairFace val 1-2500: an MLP over the descriptor, gender 86.4 / race 60.8 / age 49.8; a small
CNN on the chip fused with the descriptor, 88.1 / 64.6 / 54.1.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from facellm.faces.descriptor_net import LEVELS, descriptor_network, first_conv_of_level, frozen_maps, residual_levels
from facellm.faces.training import one_cycle, write_weights
from facellm.labels import FAIRFACE_VOCAB

WEIGHTS = Path(__file__).parent / "weights" / "fairface-attributes-v3.pt"
CHIP = 150  # dlib's aligned chip (padding 0.25), the descriptor network's input
FROZEN = 3  # dlib's levels of 32, 64 and 128 filters stay as trained; the two 256-filter levels are fine-tuned
ATTRIBUTES = ("age", "gender", "race")


@dataclass
class FaceInputs:
    """What the attribute network reads about one face (or, stacked, many)."""

    chip: np.ndarray  # CHIP x CHIP x 3 uint8: the face aligned on its landmarks with FairFace's 0.25 margin


def features(image: Image.Image, box=None, points: int | None = None, found: np.ndarray | None = None) -> FaceInputs:
    """Inputs of the largest face (or of `box`; a whole-image box when no face is found); `found`: the box's
    landmarks when already known."""
    from facellm.faces.detect import detect_faces
    from facellm.faces.embed import aligned_chip

    box = box or detect_faces(image, fallback=True)[0]
    return FaceInputs(chip=aligned_chip(image, box, points=points, found=found))


def _features_of_path(path: str) -> FaceInputs | None:
    from facellm.errors import FaceLLMError
    from facellm.images import read_image

    try:
        return features(read_image(path))
    except FaceLLMError:
        return None


def extract(paths: list[Path], workers: int = 0) -> tuple[FaceInputs, list[int]]:
    """Inputs of every readable image (in parallel), stacked along a first axis, and the indices of those kept."""
    from facellm.parallel import map_over_cores

    rows = map_over_cores(_features_of_path, [str(p) for p in paths], workers, chunksize=16)
    kept = [i for i, row in enumerate(rows) if row is not None]
    if not kept:
        from facellm.errors import InputError

        raise InputError("none of the training images could be read", "check the FairFace folder")
    return FaceInputs(chip=np.stack([rows[i].chip for i in kept])), kept


def build_network():
    """dlib's levels after FROZEN (initialised with dlib's weights), global average pooling, dropout, one linear
    head per attribute. It reads the feature maps of `trunk()`."""
    import copy

    import torch.nn as nn

    class AttributeNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            dlib_convs = descriptor_network().convs[first_conv_of_level(FROZEN) :]
            self.levels = nn.ModuleList(copy.deepcopy(conv) for conv in dlib_convs)
            self.dropout = nn.Dropout(0.3)
            width = LEVELS[-1][0]
            self.heads = nn.ModuleDict({a: nn.Linear(width, len(FAIRFACE_VOCAB[a])) for a in ATTRIBUTES})

        def pooled(self, maps):
            """The trunk's feature maps through the fine-tuned levels, averaged over the image."""
            return residual_levels(self.levels, maps.float(), LEVELS[FROZEN:]).mean(dim=(2, 3))

        def forward(self, maps):
            joined = self.dropout(self.pooled(maps))
            return {a: head(joined) for a, head in self.heads.items()}

    return AttributeNet()


def trunk(inputs: FaceInputs, mirrored: bool = False):
    """The frozen levels' feature maps of every chip (of its mirror image if asked), in half precision."""
    return frozen_maps(inputs.chip.reshape(-1, CHIP, CHIP, 3), FROZEN, mirrored)


def fit(inputs: FaceInputs, labels: dict[str, list[str]], epochs: int = 8, batch: int = 128, seed: int = 0,
        say=print):  # fmt: skip
    """Fine-tune on all three attributes at once (summed cross-entropy, label smoothing 0.1; each example is the
    face or its mirror image at random); dlib's levels peak at a rate of 3e-4, the new heads at 3e-3. Returns the
    state dict in half precision, exactly as it is shipped and scored."""

    import torch

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    say(f"running dlib's first {FROZEN} levels over {len(inputs.chip)} faces and their mirror images...")
    plain, mirror = trunk(inputs), trunk(inputs, mirrored=True)
    targets = {a: torch.tensor([FAIRFACE_VOCAB[a].index(v) for v in values]) for a, values in labels.items()}
    net = build_network()

    def batch_loss(index):
        flip = torch.rand(len(index), generator=generator) < 0.5
        logits = net(torch.where(flip[:, None, None, None], mirror[index], plain[index]))
        return sum(torch.nn.functional.cross_entropy(logits[a], targets[a][index], label_smoothing=0.1)
                   for a in targets)  # fmt: skip

    one_cycle(net, len(plain), epochs, batch, {"levels": 3e-4, "heads": 3e-3}, generator, batch_loss, say)
    return {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}


def probabilities(net, inputs: FaceInputs) -> dict:
    """Class probabilities per attribute (rows: faces, columns: FairFace classes), averaged with the mirror image."""
    import torch

    net.eval()
    chips = inputs.chip.reshape(-1, CHIP, CHIP, 3)
    with torch.inference_mode():  # faces and mirror images in one pass: the first half plain, the second mirrored
        maps = trunk(FaceInputs(chip=np.concatenate([chips, chips[:, :, ::-1]])))
        logits = {}
        for start in range(0, len(maps), 512):
            for a, v in net(maps[start : start + 512]).items():
                logits.setdefault(a, []).append(v)
        probs = {a: torch.softmax(torch.cat(v), dim=1) for a, v in logits.items()}
    return {a: ((p[: len(chips)] + p[len(chips) :]) / 2).numpy() for a, p in probs.items()}


@dataclass
class AttributePrediction:
    age: dict[str, float]
    gender: dict[str, float]
    race: dict[str, float]

    def top(self) -> dict[str, str]:
        return {name: max(probs, key=probs.get) for name, probs in vars(self).items()}


def load_network(path: Path):
    import torch

    from facellm.errors import ModelLoadError

    if not Path(path).is_file():
        raise ModelLoadError(f"attribute weights missing: {path}", "run facellm faces train-attributes")
    return network_from_state(torch.load(path, map_location="cpu", weights_only=True))


def network_from_state(state: dict):
    """The network in float32 from a (half-precision) state dict, ready for prediction."""
    net = build_network()
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return net.eval()


@cache
def shipped_network():
    return load_network(WEIGHTS)


def predict(inputs: FaceInputs, net=None) -> AttributePrediction:
    """Probabilities of every FairFace class for one face."""
    probs = probabilities(net or shipped_network(), inputs)
    return AttributePrediction(**{a: {c: round(float(p), 4) for c, p in zip(FAIRFACE_VOCAB[a], probs[a][0])}
                                  for a in ATTRIBUTES})  # fmt: skip


def accuracy_report(net, inputs: FaceInputs, labels: dict[str, list[str]], races: list[str]) -> dict:
    """Accuracy per attribute, overall and per race group."""
    report = {}
    probs = probabilities(net, inputs)
    for attribute, values in labels.items():
        classes = FAIRFACE_VOCAB[attribute]
        guess = probs[attribute].argmax(axis=1)
        right = np.array([classes[g] == v for g, v in zip(guess, values)])
        per_race = {r: round(100 * float(right[[i for i, rr in enumerate(races) if rr == r]].mean()), 2)
                    for r in sorted(set(races))}  # fmt: skip
        report[attribute] = {"accuracy": round(100 * float(right.mean()), 2), "per_race": per_race, "n": len(values)}
    return report


def model_card(training: str, evaluation: str, report: dict) -> dict:
    return {
        "model": "dlib's face descriptor ResNet on the 150 px aligned face chip: its first three levels (32-128 "
        "filters) as dlib trained them, its two 256-filter levels fine-tuned here (this file holds them), global "
        "average pooling, one linear head each for age group, gender and race; mirror-image averaging at prediction "
        "time",
        "training_data": training,
        "evaluation_data": evaluation,
        "accuracy": report,
        "licence": "fine-tuned on FairFace (CC BY 4.0; Karkkainen and Joo, WACV 2021) from dlib's public-domain face "
        "descriptor network (Davis King); cite FairFace when used",
        "intended_use": "research on face understanding: grounding and checking language-model answers, dataset "
        "statistics. Not for decisions about people.",
        "known_biases": "FairFace labels are annotators' perceptions, not self-reported identity; accuracy differs "
        "between race groups (see per_race) and dlib's network is weaker on children; age groups next to each "
        "other are often confused.",
    }


def save(state: dict, path: Path, card: dict) -> None:
    write_weights(state, path, card)
    lines = [f"# {path.name}", "", *(f"- **{k}**: {v}" for k, v in card.items() if k != "accuracy"), "",
             "| attribute | accuracy % | per race group |", "|---|---|---|"]  # fmt: skip
    for name, r in card["accuracy"].items():
        lines.append(f"| {name} | {r['accuracy']} | " + ", ".join(f"{k} {v}" for k, v in r["per_race"].items()) + " |")
    path.with_name("MODEL_CARD.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def train_on_fairface(fairface: Path, train_limit: int, val_limit: int, epochs: int, out: Path | None = None,
                      workers: int = 0, say=print) -> tuple[dict, Path]:  # fmt: skip
    """Train on FairFace train (first `train_limit` rows), score on val; save weights and card. Returns both."""
    import csv

    from facellm.errors import InputError
    from facellm.labels import normalise

    def split(name: str, limit: int):
        labels = fairface / f"fairface_label_{name}.csv"
        if not labels.is_file():
            raise InputError(f"{labels} not found", "pass --fairface with fairface_label_{train,val}.csv inside")
        with open(labels, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))[:limit]
        say(f"reading {len(rows)} {name} images (detection, alignment, descriptors)...")
        x, kept = extract([fairface / "fairface_img_margin025" / r["file"] for r in rows], workers)
        return x, [rows[i] for i in kept]

    def truth(rows) -> dict[str, list[str]]:
        return {a: [normalise(a, r[a]) for r in rows] for a in ATTRIBUTES}

    x_train, train_rows = split("train", train_limit)
    x_val, val_rows = split("val", val_limit)
    state = fit(x_train, truth(train_rows), epochs=epochs, say=say)
    report = accuracy_report(network_from_state(state), x_val, truth(val_rows), truth(val_rows)["race"])
    card = model_card(
        f"FairFace train 1-{train_limit} ({len(train_rows)} readable images), {epochs} epochs",
        f"FairFace val 1-{val_limit} ({len(val_rows)} readable images)",
        report,
    )
    target = out or WEIGHTS
    save(state, target, card)
    return report, target
