"""Two-process DDP training on the CPU (gloo) through torchrun: the same command as a single process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from hifacegan.train.report import read_scalars

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "name": "tiny",
    "generator": "lipspade-512",
    "generator_overrides": {"ngf": 8, "legacy_keys": False},
    "size": 64,
    "discriminator": "multiscale-lite",
    "gan": True,
    "fidelity": True,
    "batch_size": 2,
    "limit": 8,
    "log_every": 1,
    "image_every": 100,
    "checkpoint_every": 100,
    "workers": 0,
    "threads": 1,
    "template": "ffhq",
}


def test_two_ranks_train_in_sync(tmp_path, shared_data):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "hifacegan",
        "train",
        "--no-progress",
        "--config",
        str(config),
        "--data",
        str(shared_data / "faces-train"),
        "--out",
        str(out),
        "--max-steps",
        "3",
    ]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["step"] == 3
    assert summary["samples"] == 3 * 2 * 2  # steps x ranks x batch
    hashes = summary["rank_weights_sha256"]  # "generator:discriminator" digests, one per rank
    assert len(hashes) == 2 and hashes[0] == hashes[1] and summary["ranks_in_sync"]
    assert ":" in hashes[0]
    # It trained: the weights moved away from the seed's initialisation.
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["world_size"] == 2 and ckpt["discriminator"] is not None
    rows = read_scalars(out)
    assert [r["step"] for r in rows] == [1, 2, 3]
    # Only the primary rank writes: one line per message, not two.
    assert result.stdout.count("stopped by max_steps") + result.stderr.count("stopped by max_steps") == 1
