"""How degraded the pipeline calls the largest face of clean and degraded faces-hires portraits, at several sizes.

The probe behind docs/benchmarks.md ("How degraded a face is decides how much of the network's face it takes"):
for every ``--step``-th portrait, at each long side and task (seeded as ``hifacegan eval --pipeline`` seeds them),
it prepares the largest face as the Renovator does and records the gate's measures and its share, with NIQE and
noise alone (``degradation(sigma, denoised)``, the gate before) and with the face's own pixels too (now).

    .venv/bin/python docs/results/probe_gate.py --sizes 256,384,512 --step 4 --out gate.jsonl
    .venv/bin/python docs/results/probe_gate.py --sizes 768,1024 --tasks none,full,jpeg,sr4x,deblur --step 8 \\
        --out gate.jsonl
    .venv/bin/python docs/results/probe_gate.py --summary gate.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from hifacegan.degradations import degrade, rng_for
from hifacegan.evaluation._files import find_images, read_rgb
from hifacegan.evaluation.pipeline_eval import fit_long_side
from hifacegan.face import detail
from hifacegan.pipeline.renovator import Renovator

TASKS = ("none", "full", "deblur", "sr4x", "denoise", "jpeg")


def probe(sizes: list[int], tasks: list[str], step: int, data: Path, out: Path) -> None:
    renovator = Renovator("default", "cpu", threads=1)
    files, names = find_images(data)
    pairs = list(zip(files, names, strict=True))[::step]
    with out.open("a") as sink:
        for k, (path, name) in enumerate(pairs, 1):
            image = read_rgb(path)
            for size in sizes:
                clean = fit_long_side(image, size)
                for task in tasks:
                    photo = clean if task == "none" else degrade(clean, task, rng=rng_for(0, name))
                    faces = renovator.detect(photo)
                    if not faces:
                        continue
                    index = max(range(len(faces)), key=lambda i: faces[i].size)
                    face = renovator.prepare(photo, faces[index], index)
                    row = {"name": name, "size": size, "task": task, "face_size": face.path.face_size}
                    if face.large is None:  # at the network's size: the small-face gate, already in path
                        row.update(merge="replace", now=face.path.degradation)
                    else:
                        row.update(
                            merge="detail",
                            before=detail.degradation(face.sigma, face.large[1]),
                            now=face.path.degradation,
                            **(vars(face.pixels) if face.pixels is not None else {}),  # measured under 320 px
                        )
                    sink.write(json.dumps(row) + "\n")
            print(f"{k}/{len(pairs)} {name}", flush=True)


def summary(path: Path) -> None:
    """Mean share per long side and task, before -> now (faces merged through the bands only)."""
    groups: dict[tuple[int, str], list[dict]] = defaultdict(list)
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row["merge"] == "detail":
            groups[row["size"], row["task"]].append(row)
    print("| long side | task | faces | before: mean, kept | now: mean, kept |")
    print("|---|---|---:|---|---|")
    for (size, task), rows in sorted(groups.items()):
        before = np.array([r["before"] for r in rows])
        now = np.array([r["now"] for r in rows])
        print(
            f"| {size} | {task} | {len(rows)} | {before.mean():.2f}, {np.mean(before == 0):.0%} "
            f"| {now.mean():.2f}, {np.mean(now == 0):.0%} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data/faces-hires"))
    parser.add_argument("--sizes", default="256,384,512", help="long sides, comma-separated")
    parser.add_argument("--tasks", default=",".join(TASKS), help="degradation tasks ('none': clean)")
    parser.add_argument("--step", type=int, default=4, help="every step-th portrait")
    parser.add_argument("--out", type=Path, help="JSON lines to append to")
    parser.add_argument("--summary", type=Path, help="print the table of an earlier --out and stop")
    args = parser.parse_args()
    if args.summary:
        summary(args.summary)
        return
    if args.out is None:
        parser.error("--out is needed to probe (or --summary FILE to print a table)")
    sizes = [int(s) for s in args.sizes.split(",")]
    probe(sizes, args.tasks.split(","), args.step, args.data, args.out)


if __name__ == "__main__":
    main()
