"""The specialist on FaceXBench's CFP same-person questions (cfpfp_multiple_mcq: frontal and profile; cfpff: frontal
only), rebuilt on CFP identities 1-250 (splits 1-5, the development part). Splits 6-10 and their identities 251-500
are reserved for measurements made elsewhere: this bench never reads them.

Each real question keeps its text, options and key; its images are drawn from development identities so that the key is
true (bench/accuracy/specialist_vs_facellm.rebuild_identity). For cfpfp each person offers 4 frontal and 4 profile
photos (a question's images are then about half profiles); for cfpff, the 10 frontal ones.
Run: python -m bench.accuracy.cfp_forms --cfp DIR
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.accuracy import specialist_vs_facellm as rows_bench
from bench.paths import SHARED
from facellm.backends.specialist import SpecialistBackend
from facellm.eval.facexbench import load_benchmark
from facellm.eval.report import load_predictions, score
from facellm.eval.run import run_questions

SOURCE = SHARED / "facexbench" / "benchmark"
DEVELOPMENT = range(1, 251)  # CFP identities of splits 1-5 (251-500, splits 6-10, are reserved: never read)


def people_folder(cfp: Path, out: Path, profiles: bool, identities: range = DEVELOPMENT) -> Path:
    """out/NNN/*.jpg links: 4 frontal + 4 profile photos per identity (profiles) or its 10 frontal ones."""
    for person in identities:
        folder = out / f"{person:03d}"
        folder.mkdir(parents=True)
        source = cfp / "Data" / "Images" / f"{person:03d}"
        chosen = (
            [("frontal", k) for k in range(1, 5)] + [("profile", k) for k in range(1, 5)]
            if profiles
            else [("frontal", k) for k in range(1, 11)]
        )
        for kind, k in chosen:
            (folder / f"{kind}_{k:02d}.jpg").symlink_to(source / kind / f"{k:02d}.jpg")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cfp", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print("| file | questions | specialist | refused | s / question (2 workers) |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, profiles in (("cfpfp_multiple_mcq", True), ("cfpff_multiple_mcq", False)):
            people = people_folder(args.cfp, Path(tmp) / f"people-{name}", profiles, DEVELOPMENT)
            bench = Path(tmp) / name
            bench.mkdir()
            rows_bench.rebuild_identity(SOURCE / f"{name}.json", bench, people, seed=args.seed)
            questions = load_benchmark(bench)
            started = time.perf_counter()
            run_questions(questions, SpecialistBackend(), Path(tmp) / f"run-{name}")
            seconds = (time.perf_counter() - started) / max(1, len(questions))
            _, scored = score(load_predictions(Path(tmp) / f"run-{name}" / "results"), "strict")
            right = sum(item.extracted == item.correct for item in scored)
            refused = sum((item.prediction or "").startswith("cannot measure") for item in scored)
            print(
                f"| {name} | {len(scored)} | {100 * right / max(1, len(scored)):.1f}% | {refused} | {seconds:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
