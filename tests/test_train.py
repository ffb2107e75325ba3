"""Training on real faces: it learns, it resumes exactly, it stops cleanly, it exports usable weights.

A tiny network keeps these fast: lipspade at 64 px with ngf 8 (the hifacegan family needs 128 px).
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from hifacegan.cli import main as cli
from hifacegan.train import TrainConfig, TrainingStep, learning_rate
from hifacegan.train.distributed import DistInfo
from hifacegan.train.report import read_scalars

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "name": "tiny",
    "generator": "lipspade-512",
    "generator_overrides": {"ngf": 8, "legacy_keys": False},
    "size": 64,
    "discriminator": "multiscale-lite",
    "batch_size": 2,
    "limit": 8,
    "log_every": 1,
    "image_every": 2,
    "checkpoint_every": 2,
    "workers": 0,
    "threads": 1,
    "template": "ffhq",  # measuring the data's alignment runs a face detector: not needed here
}


def tiny_config(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


def train_cli(*args: str) -> int:
    return cli(["train", "--no-progress", *map(str, args)])


@pytest.fixture(autouse=True)
def _one_thread():
    # On a shared 2-core machine two torch threads made these steps ~5x slower than one (OpenMP waits).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def faces(shared_data: Path) -> Path:
    return shared_data / "faces-train"


@pytest.fixture(scope="module")
def fixed_batch(faces: Path) -> tuple[torch.Tensor, torch.Tensor]:
    from hifacegan.data import FaceDegradationDataset

    data = FaceDegradationDataset(faces, 64, task="full", train=False, seed=3, limit=4)
    items = [data[i] for i in range(4)]
    return torch.stack([x["lq"] for x in items]), torch.stack([x["gt"] for x in items])


def reconstruction_error(step: TrainingStep, lq: torch.Tensor, gt: torch.Tensor) -> float:
    step.generator.eval()
    with torch.no_grad():
        out = (step.generator(lq) + 1) / 2
    step.generator.train()
    return (out - gt).abs().mean().item()


def test_overfits_a_fixed_batch_of_real_faces(fixed_batch):
    torch.manual_seed(0)
    lq, gt = fixed_batch
    config = TrainConfig(**{**TINY, "gan": False, "fidelity": True, "lr_g": 1e-3})
    step = TrainingStep(config, DistInfo())
    before = reconstruction_error(step, lq, gt)
    for _ in range(30):
        terms, _ = step(lq, gt)
    after = reconstruction_error(step, lq, gt)
    assert after < 0.6 * before, (before, after)
    assert set(terms) == {"l1", "perceptual", "g_total"}


def test_gan_step_matches_the_two_pass_formulation(fixed_batch):
    """One discriminator pass with per-network backward == pix2pixHD's G pass + D(fake.detach()) pass."""
    from hifacegan.losses import feature_matching_loss, lsgan_discriminator_loss, lsgan_generator_loss

    torch.manual_seed(0)
    lq, gt = fixed_batch
    config = TrainConfig(**{**TINY, "gan": True, "fidelity": True, "lr_g": 0.0, "lr_d": 0.0})
    step = TrainingStep(config, DistInfo())
    # Eval mode: spectral norm then uses its stored vectors instead of stepping its power iteration at every
    # call, so the reference's three discriminator calls see the same weights as the step's one.
    step.generator.eval()
    step.discriminator.eval()
    g, d = copy.deepcopy(step.generator), copy.deepcopy(step.discriminator)
    terms, _ = step(lq, gt)
    # Reference, written the usual way on copies taken before the step.
    fake = (g(lq) + 1) / 2
    fake_f, real_f = d(lq, fake), d(lq, gt)
    g_loss = (
        config.lambda_l1 * (fake - gt).abs().mean()
        + config.lambda_perceptual * step.perceptual(fake, gt)
        + lsgan_generator_loss(fake_f)
        + config.lambda_fm * feature_matching_loss(fake_f, real_f)
    )
    g_loss.backward()
    d_fake, d_real = lsgan_discriminator_loss(d(lq, fake.detach()), d(lq, gt))
    for p in d.parameters():
        p.grad = None
    (d_fake + d_real).backward()
    assert terms["g_total"].item() == pytest.approx(g_loss.item(), rel=1e-4)
    for (name, a), b in zip(step.generator.named_parameters(), g.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, rtol=1e-3, atol=1e-7), name
    for (name, a), b in zip(step.discriminator.named_parameters(), d.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, rtol=1e-3, atol=1e-7), name


def test_learning_rate_constant_then_linear_decay():
    assert learning_rate(1e-4, 0, 100, 0.4) == 1e-4
    assert learning_rate(1e-4, 59, 100, 0.4) == 1e-4
    assert learning_rate(1e-4, 80, 100, 0.4) == pytest.approx(0.5e-4)
    assert learning_rate(1e-4, 100, 100, 0.4) == 0.0
    assert learning_rate(1e-4, 10_000, None, 0.4) == 1e-4


def test_training_stops_where_the_schedule_reaches_zero(tmp_path, faces):
    """Past the end of a decaying schedule the learning rate is 0: more steps would only burn time."""
    config = tiny_config(tmp_path, gan=False, fidelity=True, steps=3)
    out = tmp_path / "run"
    assert train_cli("--config", config, "--data", faces, "--out", out) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == 3 and summary["stopped_by"] == "schedule_end"
    # A longer schedule on resume continues it; --max-steps past the end is the user's explicit choice.
    assert train_cli("--resume", "--data", faces, "--out", out, "--steps", 5) == 0
    assert json.loads((out / "summary.json").read_text())["step"] == 5
    assert train_cli("--resume", "--data", faces, "--out", out, "--max-steps", 6) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == 6 and summary["stopped_by"] == "max_steps"


def test_resume_continues_exactly(tmp_path, faces):
    """3 steps + resume to 6 == 6 steps in one go (GAN on, a data worker, an epoch boundary at step 4)."""
    config = tiny_config(tmp_path, workers=1, gan=True, fidelity=True, steps=6)  # lr decays across the resume
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert train_cli("--config", config, "--data", faces, "--out", whole, "--max-steps", 6) == 0
    assert train_cli("--config", config, "--data", faces, "--out", split, "--max-steps", 3) == 0
    assert train_cli("--resume", "--data", faces, "--out", split, "--max-steps", 6) == 0
    a, b = read_scalars(whole), read_scalars(split)
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]
    for ra, rb in zip(a, b, strict=True):
        for key in ("l1", "perceptual", "gan", "fm", "d_fake", "d_real", "g_total", "samples", "epoch"):
            assert ra[key] == rb[key], (key, ra, rb)
    wa = torch.load(whole / "checkpoints" / "last.pt", weights_only=True)["generator"]
    wb = torch.load(split / "checkpoints" / "last.pt", weights_only=True)["generator"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    summary = json.loads((split / "summary.json").read_text())
    assert summary["step"] == 6 and summary["samples"] == 12 and summary["stopped_by"] == "max_steps"


def test_run_directory_contents_and_exported_weights(tmp_path, faces):
    from hifacegan.weights import load_weights

    out = tmp_path / "run"
    config = tiny_config(tmp_path, gan=False, fidelity=True)
    assert train_cli("--config", config, "--data", faces, "--out", out, "--max-steps", 2, "--fp16") == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["max_steps"] == 2 and saved["gan"] is False and saved["export_fp16"] is True
    assert (out / "samples" / "step_0000002.png").is_file()
    assert (out / "tiny.md").is_file()
    loaded = load_weights(out / "tiny.safetensors")
    card = loaded.card
    assert card.output == "symmetric" and card.size == 64 and card.role == "fidelity"
    assert (
        "MobileNetV2" in card.training["perceptual_network"] or "VGG19" in card.training["perceptual_network"]
    )
    assert "L1 x100" in card.training["losses"]
    with torch.no_grad():
        image = card.to_image(loaded.generator(torch.rand(1, 3, 64, 64)))
    assert image.shape == (1, 3, 64, 64) and image.min() >= 0 and image.max() <= 1
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert torch.equal(
        ckpt["generator"]["to_rgbs.3.weight"].half(), loaded.generator.state_dict()["to_rgbs.3.weight"].half()
    )


def test_init_from_weights_starts_from_them(tmp_path, faces):
    from hifacegan.weights import read_weights

    config = tiny_config(tmp_path, gan=False, fidelity=True)
    first = tmp_path / "first"
    assert train_cli("--config", config, "--data", faces, "--out", first, "--max-steps", 1) == 0
    source, _ = read_weights(first / "tiny.safetensors")
    # A GAN fine-tune from those weights, stopped before its first step: it exports exactly what it started from.
    second = tmp_path / "second"
    assert (
        train_cli(
            "--config",
            config,
            "--data",
            faces,
            "--out",
            second,
            "--gan",
            "--no-fidelity",
            "--init-from",
            first / "tiny.safetensors",
            "--max-steps",
            0,
        )
        != 0
    )  # max_steps must be >= 1
    assert (
        train_cli(
            "--config",
            config,
            "--data",
            faces,
            "--out",
            second,
            "--gan",
            "--no-fidelity",
            "--init-from",
            first / "tiny.safetensors",
            "--max-steps",
            1,
            "--lr-g",
            0,
        )
        == 0
    )
    started, card = read_weights(second / "tiny.safetensors")
    assert all(
        torch.equal(source[k], started[k]) for k in source if "weight_u" not in k and "weight_v" not in k
    )
    assert "initialised_from" in card.training and card.role == "perceptual"


def test_a_new_run_never_overwrites_an_old_one(tmp_path, faces, capsys):
    config = tiny_config(tmp_path, gan=False, fidelity=True)
    out = tmp_path / "run"
    assert train_cli("--config", config, "--data", faces, "--out", out, "--max-steps", 1) == 0
    before = (out / "checkpoints" / "last.pt").read_bytes()
    assert train_cli("--config", config, "--data", faces, "--out", out, "--max-steps", 2) == 2
    assert "already holds a training run" in capsys.readouterr().err
    assert (out / "checkpoints" / "last.pt").read_bytes() == before


def test_init_from_a_mismatched_network_is_refused(tmp_path, faces, capsys):
    config = tiny_config(tmp_path, gan=False, fidelity=True)
    first = tmp_path / "first"
    assert train_cli("--config", config, "--data", faces, "--out", first, "--max-steps", 1) == 0
    code = train_cli(
        "--config",
        config,
        "--data",
        faces,
        "--out",
        tmp_path / "wide",
        "--set",
        "generator_overrides={ngf: 16, legacy_keys: false}",
        "--init-from",
        first,
    )
    assert code == 2
    assert "does not fit config" in capsys.readouterr().err


@pytest.mark.parametrize(
    "setup, expected",
    [
        ("missing", "does not exist"),
        ("empty", "holds no images"),
    ],
)
def test_bad_data_folder_is_a_clear_error(tmp_path, capsys, setup, expected):
    data = tmp_path / "faces"
    if setup == "empty":
        data.mkdir()
        (data / "notes.txt").write_text("not an image")
    out = tmp_path / "run"
    code = train_cli("--config", tiny_config(tmp_path), "--data", data, "--out", out, "--max-steps", 1)
    assert code == 2
    err = capsys.readouterr().err
    assert expected in err and str(data) in err
    assert not out.exists()  # nothing half-made


def test_unknown_config_is_a_clear_error(tmp_path, capsys, faces):
    assert train_cli("--config", "no-such-recipe", "--data", faces, "--out", tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert "unknown config 'no-such-recipe'" in err and "hifacegan-lite-fidelity" in err
    assert (
        train_cli(
            "--config", tiny_config(tmp_path), "--data", faces, "--out", tmp_path / "r", "--set", "lamda_l1=3"
        )
        == 2
    )
    assert "unknown setting(s) lamda_l1" in capsys.readouterr().err
    assert train_cli("--resume", "--data", faces, "--out", tmp_path / "never") == 2
    assert "does not exist" in capsys.readouterr().err


def test_shipped_recipes_are_valid():
    from hifacegan.train import list_configs, load_config_source, resolve_config

    names = list_configs()
    assert {"hifacegan-512", "hifacegan-lite-fidelity", "hifacegan-lite-perceptual"} <= set(names)
    for name in names:
        base, source = load_config_source(name)
        config = resolve_config(base, {}, source)
        assert config.name == name
    fidelity = resolve_config(*load_config_source("hifacegan-lite-fidelity")[:1], {}, "x")
    assert fidelity.generator == "hifacegan-lite-128-nlm" and not fidelity.gan and fidelity.fidelity
    paper = resolve_config(load_config_source("hifacegan-512")[0], {}, "x")
    assert (paper.lr_g, paper.lr_d, paper.beta1, paper.beta2) == (1e-4, 4e-4, 0.0, 0.9)
    assert (paper.lambda_fm, paper.lambda_perceptual, paper.batch_size) == (10.0, 10.0, 2)
    # The 256 px rung's two ends: the same network, the perceptual end naming its fidelity partner.
    rung = {
        end: resolve_config(load_config_source(f"hifacegan-lite-256-{end}")[0], {}, "x")
        for end in ("fidelity", "perceptual")
    }
    assert rung["fidelity"].generator == rung["perceptual"].generator == "hifacegan-lite-256-nlm"
    assert rung["perceptual"].gan and rung["perceptual"].partner == "hifacegan-lite-256-fidelity"


def test_max_minutes_stops_cleanly(tmp_path, faces):
    out = tmp_path / "run"
    assert (
        train_cli("--config", tiny_config(tmp_path), "--data", faces, "--out", out, "--max-minutes", 0.001)
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_by"] == "max_minutes" and summary["step"] >= 1
    assert (out / "checkpoints" / "last.pt").is_file() and (out / "tiny.safetensors").is_file()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_to_the_process_group_saves_and_exits(tmp_path, faces, sig):
    """As from a terminal's Ctrl-C or a scheduler's SIGTERM: the data worker gets it too."""
    out = tmp_path / "run"
    config = tiny_config(tmp_path, workers=1)
    command = [
        sys.executable,
        "-m",
        "hifacegan",
        "train",
        "--no-progress",
        "--config",
        str(config),
        "--data",
        str(faces),
        "--out",
        str(out),
        "--max-steps",
        "100000",
        "--checkpoint-every",
        "100000",
    ]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "scalars.csv").is_file() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert process.poll() is None, process.stdout.read()
        os.killpg(process.pid, sig)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == (0 if sig == signal.SIGTERM else 130), output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_by"] == signal.Signals(sig).name
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["step"] == summary["step"] >= 1
    assert "continue with --resume" in output and "Traceback" not in output


def test_config_checks_and_overrides():
    from hifacegan.train import ConfigError, resolve_config
    from hifacegan.train.config import parse_assignment

    base = {"generator": "hifacegan-lite-128"}
    key, value = parse_assignment("lr_g=1e-4")  # YAML reads this as a string
    assert resolve_config(base, {key: value}, "cli").lr_g == 1e-4
    assert resolve_config(base, {"batch_size": None}, "cli").batch_size == 2  # None: not given
    assert resolve_config(base, {}, "cli").image_size == 128
    for bad, message in [
        ({"generator": "hifacegan-9000"}, "unknown generator config"),
        ({"discriminator": "huge"}, "unknown discriminator"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"template": [[1, 2]]}, "template must be"),
        ({"gan": False, "fidelity": False, "lambda_perceptual": 0}, "no loss left"),
        ({"lr_g": "fast"}, "lr_g must be a number"),
        ({"zoom_out_probability": 2}, "zoom_out_probability must be in"),
        ({"zoom_out_min_scale": 0}, "zoom_out_min_scale must be in"),
        ({"small_face_probability": -0.1}, "small_face_probability must be in"),
        ({"small_face_min_side": 4}, "small_face_min_side must be at least 16"),
    ]:
        with pytest.raises(ConfigError, match=message):
            resolve_config(base, bad, "cli")
    with pytest.raises(ConfigError, match="key=value"):
        parse_assignment("lr_g")


def test_init_from_plain_weights_into_a_residual_generator_starts_at_the_identity() -> None:
    from hifacegan.models import build_generator
    from hifacegan.train.checkpoint import adapt_init_state

    plain = build_generator("hifacegan-lite-128", ngf=4)
    residual = build_generator("hifacegan-lite-128-residual", ngf=4)
    state = plain.state_dict()
    adapted, note = adapt_init_state(state, plain.config, residual.config, "plain.safetensors")
    assert "reset to zero" in note and state["to_rgbs.3.weight"].abs().sum() > 0  # the source is untouched
    residual.load_state_dict(adapted)
    x = torch.rand(1, 3, 128, 128)
    torch.testing.assert_close(residual(x), x * 2 - 1)
    for key in state:
        if not key.startswith("to_rgbs.3"):
            assert torch.equal(adapted[key], state[key]), key
    assert adapt_init_state(state, plain.config, plain.config, "x") == (state, "")
    assert adapt_init_state(state, {}, plain.config, "old checkpoint")[1] == ""  # unrecorded = plain
    with pytest.raises(ValueError, match="residual generator"):
        adapt_init_state(state, residual.config, plain.config, "residual.safetensors")


def test_init_from_the_embedded_fidelity_weights_by_name() -> None:
    """`hifacegan train --init-from hifacegan-lite-fidelity` continues our weights (docs/training/README.md)."""
    from hifacegan.models import build_generator
    from hifacegan.train.checkpoint import generator_state_from
    from hifacegan.train.config import load_config_source
    from hifacegan.weights.loading import check_state_dict

    state, note, config = generator_state_from("hifacegan-lite-fidelity")
    assert note.startswith("weights hifacegan-lite-fidelity")
    assert config["residual"] and config["prefilter"] == "nlm"
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    recipe, _ = load_config_source("hifacegan-lite-fidelity")
    generator = build_generator(recipe["generator"], **recipe.get("generator_overrides", {}))
    check_state_dict(generator, state, "hifacegan-lite-fidelity", recipe["generator"])
    generator.load_state_dict(state)
