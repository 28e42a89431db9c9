"""`facellm dev`: the offline tiny checkpoint, released-shape checkpoints, the sample faces."""

from __future__ import annotations

from pathlib import Path

import click

from facellm import configs
from facellm.cli.root import cli
from facellm.files import output_folder
from facellm.model.random_shape import SHAPES, make_shape_checkpoint
from facellm.model.tiny import make_tiny_checkpoint
from facellm.samples import sample_faces


@cli.group()
def dev() -> None:
    """Developer tools: offline tiny checkpoint, released-shape checkpoints, sample faces."""


@dev.command("make-shape-model")
@click.option("--shape", type=click.Choice(SHAPES), required=True)
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
def dev_make_shape_model(shape, out_dir, seed) -> None:
    """A random-initialised checkpoint of a released InternVL3-hf shape (config + processor only for 8B/38B)."""
    output_folder(out_dir, "OUT_DIR")
    out, weights = make_shape_checkpoint(shape, out_dir, seed)
    if weights:
        click.echo(f"{shape} with random bf16 weights written to {out} (loads with facellm.model.load_model)")
    else:
        click.echo(
            f"{shape}: config and processor written to {out}; no weights (too big to build here; enough for "
            f"`facellm plan` and for building the model on a GPU machine)"
        )


@dev.command("make-tiny-model")
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
def make_tiny_model(out_dir: Path, seed: int) -> None:
    """Build a tiny random InternVL checkpoint offline in OUT_DIR (for smoke tests; its answers are gibberish)."""

    output_folder(out_dir, "OUT_DIR")
    make_tiny_checkpoint(out_dir, seed=seed)
    click.echo(f"tiny checkpoint written to {out_dir}")


@dev.command("configs")
@click.argument("name", required=False)
def dev_configs(name: str | None) -> None:
    """The shipped training and accelerate configs and where they are installed; with NAME, only that file's path
    (for `accelerate launch --config_file "$(facellm dev configs fsdp)" ...`)."""
    if name:
        kind = "accelerate" if name in configs.names("accelerate") else "train"
        click.echo(configs.config_file(name, kind))
        return
    for kind in configs.KINDS:
        for found in configs.names(kind):
            click.echo(f"{kind:10s} {found:16s} {configs.SHIPPED / kind / (found + '.yaml')}")


@dev.command("samples")
def samples() -> None:
    """List the shipped sample faces (FairFace, CC BY 4.0) with their labels."""

    for face in sample_faces():
        click.echo(f"{face.path}\t{face.age}\t{face.gender}\t{face.race}")
