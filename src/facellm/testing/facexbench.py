"""Stand-in FaceXBench folders: the real question files with generated images at every referenced path.

FaceXBench's images come from datasets with their own licences and are not shipped; tests and benchmarks only
need files that decode, so each referenced path gets one of the shipped sample faces, resized and tinted.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageOps

from facellm.samples import sample_faces


def make_standin_benchmark(
    source_dir: str | Path, out_dir: str | Path, limit: int | None = None, size: int = 96
) -> Path:
    """Copy every question file of `source_dir` (its first `limit` questions each) and write stand-in images."""
    source, out = Path(source_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    faces = [ImageOps.fit(Image.open(face.path).convert("RGB"), (size, size)) for face in sample_faces()]
    count = 0
    for path in sorted(source.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if limit is not None:
            data["questions"] = dict(list(data["questions"].items())[:limit])
        (out / path.name).write_text(json.dumps(data), encoding="utf-8")
        for question in data["questions"].values():
            for relative in question.get("image_paths", []):
                target = out / relative
                if target.exists():
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                face = faces[count % len(faces)]
                face.rotate(count % 7 * 3).save(target)
                count += 1
    return out
