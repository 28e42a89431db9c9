"""Attribute predictors (FairFace age group, gender, race) on top of the pretrained dlib face models.

Each face is aligned on its 68 landmarks into dlib's chip (FairFace's own crop: 0.25 margin). The network reads two
things: the chip's pixels (a small CNN; hair, skin and texture, which an identity descriptor is trained to ignore)
and dlib's 128-D ResNet descriptor of the chip, fused before one head per attribute. It is trained on FairFace train
(`facellm faces train-attributes`) and shipped as one half-precision file with a model card. Predictions are
probabilities over FairFace's classes, averaged over the face and its mirror image.
(The first version, an MLP over the descriptor alone, scored gender 86.4, race 60.8, age 49.8 on FairFace val 1-2500.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from facellm.faces.training import conv_block, one_cycle
from facellm.labels import FAIRFACE_VOCAB

WEIGHTS = Path(__file__).parent / "weights" / "fairface-attributes-v2.pt"


CHIP = 96  # side of the aligned face chip kept for the pixel branch (dlib's alignment, padding 0.25)


@dataclass
class FaceInputs:
    """What the attribute network reads about one face."""

    descriptor: np.ndarray  # dlib's 128-D descriptor of the aligned face
    mirrored: np.ndarray  # the same for the mirror image
    chip: np.ndarray  # CHIP x CHIP x 3 uint8: the aligned face with FairFace's 0.25 margin


def features(image: Image.Image, box=None, points: int | None = None) -> FaceInputs:
    """Inputs of the largest face (or of `box`; a whole-image box when no face is found).

    The face is aligned on its landmarks into dlib's 150 px chip with a 0.25 margin, which is how FairFace's own
    images were cut, so a face from any photo looks to the network like the images it was trained on."""
    from facellm.faces.detect import detect_faces
    from facellm.faces.embed import aligned_chip, chip_descriptors

    aligned = aligned_chip(image, box or detect_faces(image, fallback=True)[0], points=points)
    descriptor, mirrored = chip_descriptors(aligned)
    return FaceInputs(
        descriptor=descriptor.astype(np.float32),
        mirrored=mirrored.astype(np.float32),
        chip=np.asarray(Image.fromarray(aligned).resize((CHIP, CHIP), Image.Resampling.LANCZOS)),
    )


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
    stacked = {name: np.stack([getattr(rows[i], name) for i in kept]) for name in ("descriptor", "mirrored", "chip")}
    return FaceInputs(**stacked), kept


ATTRIBUTES = ("age", "gender", "race")
SIDE = 64  # the network's input side: the aligned chip resized from CHIP


def build_network():
    """Two branches fused: a small CNN on the aligned face chip (it sees hair, skin and texture, which the identity
    descriptor was trained to ignore) and a layer over dlib's descriptor; one head per attribute."""
    import torch
    import torch.nn as nn

    class AttributeNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pixels = nn.Sequential(*conv_block(3, 32), *conv_block(32, 64), *conv_block(64, 128),
                                        *conv_block(128, 256),
                                        nn.AdaptiveAvgPool2d(1), nn.Flatten())  # fmt: skip
            self.identity = nn.Sequential(nn.Linear(128, 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True))
            self.dropout = nn.Dropout(0.4)
            self.heads = nn.ModuleDict({a: nn.Linear(512, len(FAIRFACE_VOCAB[a])) for a in ATTRIBUTES})

        def forward(self, chips, descriptors):
            joined = self.dropout(torch.cat([self.pixels(chips), self.identity(descriptors)], dim=1))
            return {a: head(joined) for a, head in self.heads.items()}

    return AttributeNet()


def _tensors(inputs: FaceInputs, mirrored: bool = False):
    """Network inputs: chips scaled to SIDE and normalised, descriptors standardised (mirror images if asked)."""
    import torch

    chips = torch.tensor(inputs.chip).reshape(-1, CHIP, CHIP, 3).permute(0, 3, 1, 2).float() / 255.0
    chips = torch.nn.functional.interpolate(chips, size=(SIDE, SIDE), mode="bilinear", antialias=True)
    descriptors = torch.tensor(inputs.mirrored if mirrored else inputs.descriptor).reshape(-1, 128).float()
    if mirrored:
        chips = chips.flip(-1)
    return (chips - 0.5) / 0.25, descriptors * 10.0


def fit(inputs: FaceInputs, labels: dict[str, list[str]], epochs: int = 20, batch: int = 128, seed: int = 0,
        say=print):  # fmt: skip
    """Train the network on all three attributes at once (summed cross-entropy); returns its state dict in half
    precision, exactly as it is shipped and scored.

    Augmentation: mirror images (chip flipped, mirrored descriptor), shifts of up to 4 px, brightness/contrast."""

    import torch

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    plain, mirror = _tensors(inputs), _tensors(inputs, mirrored=True)
    targets = {a: torch.tensor([FAIRFACE_VOCAB[a].index(v) for v in values]) for a, values in labels.items()}
    net = build_network()

    def batch_loss(index):
        flip = torch.rand(len(index), generator=generator) < 0.5
        chips = torch.where(flip[:, None, None, None], mirror[0][index], plain[0][index])
        descriptors = torch.where(flip[:, None], mirror[1][index], plain[1][index])
        logits = net(_jitter(chips, generator), descriptors)
        return sum(torch.nn.functional.cross_entropy(logits[a], targets[a][index], label_smoothing=0.1)
                   for a in targets)  # fmt: skip

    one_cycle(net, len(plain[0]), epochs, batch, 2e-3, generator, batch_loss, say)
    return {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}


def _jitter(chips, generator):
    """Shift by up to 4 px (edge pixels repeated) and scale brightness and contrast by up to 15%."""
    import torch

    padded = torch.nn.functional.pad(chips, (4, 4, 4, 4), mode="replicate")
    dx, dy = (int(v) for v in torch.randint(0, 9, (2,), generator=generator))
    chips = padded[:, :, dy : dy + SIDE, dx : dx + SIDE]
    gain = 1 + 0.15 * (2 * torch.rand(len(chips), 1, 1, 1, generator=generator) - 1)
    shift = 0.15 * (2 * torch.rand(len(chips), 1, 1, 1, generator=generator) - 1)
    return chips * gain + shift


def probabilities(net, inputs: FaceInputs) -> dict:
    """Class probabilities per attribute (rows: faces, columns: FairFace classes), averaged with the mirror image."""
    import torch

    net.eval()
    with torch.inference_mode():
        total = None
        for mirrored in (False, True):
            chips, descriptors = _tensors(inputs, mirrored)
            logits = {}
            for start in range(0, len(chips), 512):
                part = net(chips[start : start + 512], descriptors[start : start + 512])
                for a, v in part.items():
                    logits.setdefault(a, []).append(v)
            probs = {a: torch.softmax(torch.cat(v), dim=1) for a, v in logits.items()}
            total = probs if total is None else {a: (total[a] + probs[a]) / 2 for a in probs}
    return {a: p.numpy() for a, p in total.items()}


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
        "model": "two-branch network: a small CNN (4 double-conv blocks, 32-256 channels) on the 64 px aligned face "
        "chip, fused with a layer over dlib's 128-D face descriptor; one head each for age group, gender and race; "
        "mirror-image averaging at prediction time",
        "training_data": training,
        "evaluation_data": evaluation,
        "accuracy": report,
        "licence": "weights trained on FairFace (CC BY 4.0; Karkkainen and Joo, WACV 2021); cite FairFace when used",
        "intended_use": "research on face understanding: grounding and checking language-model answers, dataset "
        "statistics. Not for decisions about people.",
        "known_biases": "FairFace labels are annotators' perceptions, not self-reported identity; accuracy differs "
        "between race groups (see per_race) and dlib's descriptor is weaker on children; age groups next to each "
        "other are often confused.",
    }


def save(state: dict, path: Path, card: dict) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    path.with_suffix(".json").write_text(json.dumps(card, indent=1), encoding="utf-8")
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
