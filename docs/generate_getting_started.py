"""Write docs/getting-started.md from a real run: the demo in a fresh folder, `facellm analyze` on a sample face, the
report's accuracy table and the plots the run drew. Nothing on the page is typed by hand, so its figures cannot
drift from what the code does.

    python docs/generate_getting_started.py            # about half a minute on 2 CPU cores
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from facellm.faces import analyze_image, measured_facts
from facellm.images import read_image
from facellm.prompts import describe_measured

DOCS = Path(__file__).resolve().parent
SAMPLE = "src/facellm/samples/fairface/val_119.jpg"
PLOTS = ("dataset_balance.png", "loss_curve.png", "facexbench_accuracy.png")
TEMPLATE = """# Getting started with facellm

This walkthrough follows one real run of `facellm demo` on {machine} with no GPU and no network
({date}). `docs/generate_getting_started.py` wrote this page from that run. Every excerpt below is copied from that run; the images are the plots it wrote.

## 1. Install and run the demo

```bash
pip install -e ".[dev]" && facellm demo
```

The demo is the FaceLLM method end to end, scaled down to run in about {seconds} seconds on {machine}: the 12 FairFace faces
shipped in `src/facellm/samples/fairface/` are split into 8 training and 4 evaluation faces, a FairFaceGPT-style
dataset is built for the training faces, a tiny InternVL model is LoRA-trained on it, merged, and evaluated.
Its progress lines:

```
{progress}
```

Run it again and every stage says `done in an earlier run, skipped`: each stage keeps its outputs in
`runs/demo/<stage>/` and a `.done` marker. Delete a stage's folder to redo it.

What the numbers mean: the model is a random tiny checkpoint (built offline by `facellm dev make-tiny-model`) and
the teacher is the offline `template` teacher, which writes answers from the labels alone. The run proves every
stage works together; it is not a face model. For real numbers use a real teacher (`--base-url`, `--api-model`) and
real base models (`facellm reproduce --size 1b --dry-run` prints the full-scale plan and its cost).

## 2. What each stage produced

**analyze** measured every training face with dlib's pretrained models. For one sample face:

```
$ facellm analyze src/facellm/samples/fairface/val_119.jpg
{analyze}
```

**data** asked the teacher about 8 aspects of each face. The request states the labels and the measured pose
("What is known about this face: the person is a man; their ethnicity is White; their age is in the 20-29 range.
Measured from the image: head pose {pose}; ..."), while the stored question is
label-free ("Describe the face pose of the image based on the visual information."). The filters marked {flagged} of the {pairs}
template answers as duplicates (template text repeats across faces); they stay in the store and are left out of
the export. Kept pairs per group:

![kept pairs by age, gender and race](images/dataset_balance.png)

**train** ran LoRA (r16, alpha 32) on the tiny checkpoint; `runs/demo/train/run/log.jsonl` has loss, learning
rate, grad norm and tokens/s for every logging step:

![training loss](images/loss_curve.png)

**eval** built FaceXBench-layout age, gender and race questions from the 4 evaluation faces' labels (never seen in
training), answered them with the merged model, and scored them with the official-compatible and the strict
extractor; it also ran FairFace attribute accuracy per race group:

![accuracy per category](images/facexbench_accuracy.png)

```
{table}
```

The report (`runs/demo/report/report.md`) puts this row beside the published FaceXBench table from the FaceLLM
paper (FaceLLM-1B 38.86, 8B 56.14, 38B 60.52 overall).

## 3. Next steps

- Ask a model about a face: `facellm ask face.jpg -q "Describe the expression."` (default model `Idiap/FaceLLM-1B`,
  needs the Hugging Face Hub once; any local checkpoint folder works with `--model`).
- Build a real dataset: `facellm data build --images fairface_img_margin025 --labels fairface_label_val.csv --out runs/data --teacher openai --base-url https://api.openai.com/v1 --api-model gpt-4o-2024-11-20`.
- Train with the paper's recipe: `facellm train --config facellm-1b`.
- Evaluate on FaceXBench: `facellm eval facexbench --bench-dir facexbench/benchmark --model runs/merged --out runs/fxb`.
- Serve it: `facellm serve --model runs/merged` and open http://127.0.0.1:8000/.
"""


def run(*command: str, cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)
    return done.stderr + done.stdout  # progress goes to stderr, the final line to stdout


def main() -> None:
    root = DOCS.parent
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        started = time.monotonic()
        said = run(sys.executable, "-m", "facellm", "demo", cwd=work)
        seconds = time.monotonic() - started
        progress = [
            line.replace(str(work) + "/", "") for line in said.splitlines() if re.match(r"\[\d/8\] |demo ", line)
        ]
        progress = [line for line in progress if " ..." not in line]
        report = (work / "runs" / "demo" / "report" / "report.md").read_text(encoding="utf-8")
        table = re.search(r"(\| group \| compat.*?)\n\n", report, re.S).group(1)
        for plot in PLOTS:
            shutil.copy(work / "runs" / "demo" / "report" / plot, DOCS / "images" / plot)
    analyzed = run(sys.executable, "-m", "facellm", "analyze", SAMPLE, cwd=root).strip()
    measured = measured_facts(analyze_image(read_image(root / SAMPLE)))
    pose = describe_measured({k: v for k, v in measured.items() if k in ("pose_label", "yaw", "pitch", "roll")})
    pairs, kept = map(int, re.search(r"(\d+) QA pairs from \w+ \((\d+) kept", said).groups())
    page = TEMPLATE.format(
        machine=f"a {os.cpu_count()}-core {platform.machine()} CPU machine",
        date=datetime.date.today().isoformat(),
        seconds=round(seconds),
        progress="\n".join(progress),
        analyze=analyzed,
        pose=pose.removeprefix("head pose "),
        flagged=pairs - kept,
        pairs=pairs,
        table=table.strip(),
    )
    (DOCS / "getting-started.md").write_text(page, encoding="utf-8")
    print(f"wrote {DOCS / 'getting-started.md'} from a {seconds:.0f} s demo run")


if __name__ == "__main__":
    main()
