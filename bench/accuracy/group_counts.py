"""People in group photos counted three ways: the faces `detect.count_faces` finds (what the specialist counts), the
quick cascade's faces at 400 px (what it counted before: HOG stops at the first faces it finds) and the crowd model's
density count (made for scenes of small heads). Also the largest face's share of the shorter side, which tells a
photo of people close up from a scene (`answers._close_up`).

Photos: the annotated example photos of dlib's repository (examples/faces/*.jpg with training.xml and testing.xml,
github davisking/dlib; fetch it and pass that folder), and any `--extra PATH=COUNT` photos counted by hand.
Run: python -m bench.accuracy.group_counts --dlib DIR/examples/faces [--extra photo.jpg=3 ...]
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from PIL import Image

from facellm.faces import crowd, detect_faces
from facellm.faces.detect import count_faces
from facellm.specialist.answers import CLOSE_UP_SIDE


def annotated(folder: Path) -> list[tuple[Path, int]]:
    """(photo, number of face boxes) for every photo dlib's imglab files in `folder` annotate."""
    found: dict[Path, int] = {}
    for name in ("training.xml", "testing.xml"):
        xml = (folder / name).read_text(encoding="utf-8")
        for block in re.split(r"<image ", xml)[1:]:
            found[folder / re.search(r"file='([^']*)'", block).group(1)] = len(re.findall(r"<box ", block))
    return list(found.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dlib", type=Path, required=True, help="dlib's examples/faces folder")
    parser.add_argument("--extra", nargs="*", default=[], help="PATH=COUNT photos counted by hand")
    args = parser.parse_args()
    photos = annotated(args.dlib) + [(Path(p), int(n)) for p, n in (e.rsplit("=", 1) for e in args.extra)]
    head = crowd.shipped_model()
    ways = {
        "count_faces": lambda image: len(count_faces(image)),
        "quick cascade, 400 px": lambda image: len(detect_faces(image, "quick", max_side=400)),
        "crowd model": lambda image: round(crowd.predict(image, head=head).count),
    }
    rows, right, seconds = [], dict.fromkeys(ways, 0), dict.fromkeys(ways, 0.0)
    for path, truth in photos:
        image = Image.open(path).convert("RGB")
        counts = []
        for name, way in ways.items():
            start = time.perf_counter()
            counts.append(way(image))
            seconds[name] += time.perf_counter() - start
            right[name] += counts[-1] == truth
        boxes = detect_faces(image, "yunet", max_side=CLOSE_UP_SIDE)
        share = max((b.width / min(image.size) for b in boxes), default=0.0)
        rows.append(f"| {path.name} | {truth} | " + " | ".join(map(str, counts)) + f" | {share:.2f} |")
    print("| photo | people | " + " | ".join(ways) + " | largest face / shorter side |")
    print("|---|---|" + "---|" * len(ways) + "---|")
    print("\n".join(rows))
    print(
        "| **exact** | "
        + str(len(photos))
        + " | "
        + " | ".join(f"{right[n]} ({1000 * seconds[n] / len(photos):.0f} ms/photo)" for n in ways)
        + " | |"
    )


if __name__ == "__main__":
    main()
