"""Weights format, store and import of released checkpoints."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import SHARED, require
from safetensors.torch import save_file

from hifacegan.cli import main as cli
from hifacegan.models import build_generator
from hifacegan.weights import (
    ModelCard,
    WeightsError,
    load_weights,
    read_card,
    read_weights,
    save_weights,
    tensor_sha256,
)
from hifacegan.weights.import_pth import import_released


@pytest.fixture(autouse=True)
def _weights_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HIFACEGAN_WEIGHTS_DIR", str(tmp_path / "store"))


def _manifest_state(name: str) -> dict[str, torch.Tensor]:
    path = SHARED / "reference" / name
    require(path.is_file(), f"{path} is missing")
    g = torch.Generator().manual_seed(3)
    return {
        k: torch.tensor(5) if k.endswith("num_batches_tracked") else torch.randn(shape, generator=g)
        for k, shape in json.loads(path.read_text()).items()
    }


def _lite_card(**kw) -> ModelCard:
    return ModelCard(name="tiny", config="hifacegan-lite-128", size=128, config_overrides={"ngf": 4}, **kw)


def test_save_load_round_trip_keeps_tensors_card_and_outputs(tmp_path):
    torch.manual_seed(0)
    g = build_generator("hifacegan-lite-128", ngf=4).eval()
    card = save_weights(tmp_path / "tiny.safetensors", g, _lite_card(role="fidelity"), write_markdown=True)
    assert len(card.sha256) == 64
    loaded = load_weights(tmp_path / "tiny.safetensors")
    assert loaded.card.role == "fidelity" and loaded.card.sha256 == card.sha256
    x = torch.rand(1, 3, 128, 128)
    with torch.inference_mode():
        assert torch.equal(loaded.generator(x), g(x))
    assert "# tiny" in (tmp_path / "tiny.md").read_text()


def test_half_precision_files_load_as_float32(tmp_path):
    g = build_generator("hifacegan-lite-128", ngf=4)
    save_weights(tmp_path / "h.safetensors", g, _lite_card(), dtype=torch.float16)
    state, _ = read_weights(tmp_path / "h.safetensors")
    assert state["to_rgbs.3.weight"].dtype == torch.float16
    loaded = load_weights(tmp_path / "h.safetensors")
    assert next(loaded.generator.parameters()).dtype == torch.float32


def test_corrupted_tensors_are_detected(tmp_path):
    g = build_generator("hifacegan-lite-128", ngf=4)
    path = tmp_path / "c.safetensors"
    card = save_weights(path, g, _lite_card())
    state, _ = read_weights(path)
    state["to_rgbs.3.bias"] = state["to_rgbs.3.bias"] + 1
    save_file(state, str(path), metadata={"hifacegan.card": card.to_json()})  # card keeps the old sha256
    with pytest.raises(WeightsError, match="corrupt"):
        load_weights(path)


def test_output_conventions():
    raw = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
    assert torch.allclose(_lite_card().to_image(raw), torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    unit = ModelCard(name="r", config="lipspade-512", size=512, output="unit")
    assert torch.allclose(unit.to_image(raw), torch.tensor([0.0, 0.0, 0.0, 0.5, 1.0]))
    with pytest.raises(ValueError, match="output convention"):
        ModelCard(name="r", config="lipspade-512", size=512, output="bogus")


@pytest.mark.parametrize("wrap", ["bare", "module", "state_dict"])
def test_import_of_a_released_checkpoint_round_trips(tmp_path, wrap):
    state = _manifest_state("official_G_lipspade_ngf48_released.json")
    obj = {
        "bare": state,
        "module": {f"module.{k}": v for k, v in state.items()},
        "state_dict": {"state_dict": state},
    }[wrap]
    torch.save(obj, tmp_path / "latest_net_G.pth")
    dest = import_released(tmp_path / "latest_net_G.pth", "lipspade-512", "face_renov")
    stored, card = read_weights(dest)
    assert card.output == "unit" and card.config == "lipspade-512" and card.size == 512
    assert tensor_sha256(stored) == tensor_sha256(state)
    assert load_weights("face_renov").card.name == "face_renov"  # resolvable by name from the user store


def test_import_of_a_wrong_checkpoint_names_the_first_mismatch(tmp_path):
    state = _manifest_state("official_G_hifacegan_ngf64.json")
    torch.save(state, tmp_path / "hifacegan64.pth")
    with pytest.raises(WeightsError, match=r"does not fit config 'lipspade-512': key '.*' is missing"):
        import_released(tmp_path / "hifacegan64.pth", "lipspade-512", "x")
    state48 = _manifest_state("official_G_hifacegan_ngf48.json")
    torch.save(state48, tmp_path / "h48.pth")
    with pytest.raises(
        WeightsError, match=r"'encoder\.head\.0\.weight' has shape \(48, 3, 3, 3\), expected \(64, 3, 3, 3\)"
    ):
        import_released(tmp_path / "h48.pth", "hifacegan-512", "x")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="could not be read"):
        import_released(tmp_path / "garbage.pth", "lipspade-512", "x")
    assert not list((tmp_path / "store").glob("*")) if (tmp_path / "store").exists() else True


def test_unknown_names_and_files_without_cards_get_clear_errors(tmp_path):
    with pytest.raises(WeightsError, match="no weights named 'missing'.*hifacegan weights import"):
        load_weights("missing")
    save_file({"a": torch.zeros(1)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(WeightsError, match="has no HiFaceGAN model card"):
        read_card(tmp_path / "bare.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        read_card(tmp_path / "junk.safetensors")


def test_cli_import_list_info_verify(tmp_path, capsys):
    torch.save(_manifest_state("official_G_spade_ngf48.json"), tmp_path / "x4sr.pth")
    assert (
        cli(["weights", "import", str(tmp_path / "x4sr.pth"), "--config", "spade-512", "--name", "x4sr"]) == 0
    )
    assert cli(["weights", "list", "--json"]) == 0
    out = capsys.readouterr().out
    rows = json.loads(out[out.index("[") :])
    assert any(r["name"] == "x4sr" and r["config"] == "spade-512" for r in rows)
    assert cli(["weights", "info", "x4sr", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["output"] == "unit"
    assert cli(["weights", "verify", "x4sr"]) == 0
    # a second import under the same name is refused rather than overwriting
    assert (
        cli(["weights", "import", str(tmp_path / "x4sr.pth"), "--config", "spade-512", "--name", "x4sr"]) == 1
    )
    assert "already exists" in capsys.readouterr().err
    assert (
        cli(["weights", "import", str(tmp_path / "x4sr.pth"), "--config", "lipspade-512", "--name", "y"]) == 1
    )
    assert "does not fit config 'lipspade-512'" in capsys.readouterr().err


def test_download_over_real_http_keeps_only_verified_files(tmp_path, http_files) -> None:
    """Real sockets: a good file lands, a corrupt or truncated one leaves nothing."""
    import hashlib

    from hifacegan.weights import WeightsError
    from hifacegan.weights.download import download_file

    base, files = http_files
    files["/w.safetensors"] = payload = bytes(range(256)) * 4096
    good = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "w" / "net.safetensors"
    assert download_file(f"{base}/w.safetensors", dest, good, progress=False) == dest
    assert dest.read_bytes() == payload
    assert dest.stat().st_mode & 0o777 != 0o600  # the usual permissions, not mkstemp's
    other = tmp_path / "w" / "other.safetensors"
    with pytest.raises(WeightsError, match="sha256"):
        download_file(f"{base}/w.safetensors", other, "0" * 64, progress=False)
    with pytest.raises(WeightsError, match="truncated"):
        download_file(f"{base}/short/w.safetensors", other, None, progress=False, timeout=5)
    with pytest.raises(WeightsError, match="could not download"):
        download_file(f"{base}/missing", other, None, progress=False)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["net.safetensors"]


def test_card_markdown_shows_eval_rows_as_a_table() -> None:
    rows = [
        {
            "method": "degraded input",
            "psnr": 23.2157,
            "fid": 199.16,
            "lpips": None,
            "faces_missed": 26,
            "n": 100,
        },
        {"method": "ours", "psnr": 26.5, "fid": 60.04, "lpips": None, "faces_missed": 2, "n": 100},
    ]
    text = _lite_card(metrics={"faces-val": rows, "note": "measured on 2 cores"}).to_markdown()
    assert "| method | PSNR ↑ | FID ↓ | faces missed | n |" in text  # LPIPS: absent everywhere, no column
    assert (
        "| degraded input | 23.22 | 199.2 | 26 | 100 |" in text
        and "| ours | 26.50 | 60.0 | 2 | 100 |" in text
    )
    assert "- note: measured on 2 cores" in text


def test_embed_halves_the_weights_and_rewrites_the_card(tmp_path) -> None:
    from hifacegan.weights.embed import main as embed_main

    torch.manual_seed(0)
    g = build_generator("hifacegan-lite-128", ngf=4).eval()
    source = tmp_path / "run" / "tiny.safetensors"
    source.parent.mkdir()
    save_weights(source, g, _lite_card(description="from one sitting"))
    metrics = tmp_path / "faces-val" / "metrics.json"
    metrics.parent.mkdir()
    metrics.write_text(json.dumps([{"method": "tiny", "psnr": 25.0, "n": 3}]))
    out = tmp_path / "embedded"
    out.mkdir()
    argv = [
        str(source),
        "--metrics",
        str(metrics),
        "--description",
        "two sittings.",
        "--notes",
        "Resume here.",
    ]
    assert embed_main([*argv, "--out-dir", str(out)]) == 0
    state, card = read_weights(out / "tiny.safetensors", verify=True)
    assert state["to_rgbs.3.weight"].dtype == torch.float16
    assert card.description == "two sittings. Resume here."
    assert card.metrics["faces-val"][0]["psnr"] == 25.0
    assert "| tiny | 25.00 | 3 |" in (out / "tiny.md").read_text()


def test_embedded_weights_are_a_fidelity_pair_of_one_network() -> None:
    """The slider interpolates the two embedded networks: they must be the same network, each naming the other,
    and the perceptual one fine-tuned from the very fidelity weights shipped beside it."""
    from hifacegan.weights.store import EMBEDDED_DIR

    fidelity = load_weights(EMBEDDED_DIR / "hifacegan-lite-fidelity.safetensors")
    perceptual = load_weights(EMBEDDED_DIR / "hifacegan-lite-perceptual.safetensors")
    assert fidelity.generator.config == perceptual.generator.config
    assert (fidelity.card.role, fidelity.card.partner) == ("fidelity", "hifacegan-lite-perceptual")
    assert (perceptual.card.role, perceptual.card.partner) == ("perceptual", "hifacegan-lite-fidelity")
    assert fidelity.card.sha256[:12] in str(perceptual.card.training.get("initialised_from"))
    # The 256 px rung: its perceptual end names the fidelity weights shipped before it (partner_of pairs them).
    from hifacegan.weights import partner_of

    rung_fidelity = load_weights(EMBEDDED_DIR / "hifacegan-lite-256-fidelity.safetensors")
    rung_perceptual = load_weights(EMBEDDED_DIR / "hifacegan-lite-256-perceptual.safetensors")
    assert rung_fidelity.generator.config == rung_perceptual.generator.config
    assert (rung_perceptual.card.role, rung_perceptual.card.partner) == (
        "perceptual",
        "hifacegan-lite-256-fidelity",
    )
    assert partner_of(rung_fidelity.card).name == "hifacegan-lite-256-perceptual"
    assert rung_fidelity.card.sha256[:12] in str(rung_perceptual.card.training.get("initialised_from"))


def test_a_perceptual_end_that_names_shipped_fidelity_weights_becomes_their_partner(tmp_path) -> None:
    """Fidelity weights shipped without a partner pair with installed weights whose card names them (a perceptual
    end trained later), never with weights of their own role."""
    from hifacegan.weights import partner_of
    from hifacegan.weights.store import user_weights_dir

    store = user_weights_dir()
    store.mkdir(parents=True)
    generator = build_generator("hifacegan-lite-128", ngf=4)

    def install(name: str, role: str, partner: str | None) -> ModelCard:
        card = ModelCard(name=name, config="hifacegan-lite-128", config_overrides={"ngf": 4}, size=128)
        card.role, card.partner = role, partner
        save_weights(store / f"{name}.safetensors", generator, card)
        return read_card(store / f"{name}.safetensors")

    alone = install("shipped-fidelity", "fidelity", None)
    assert partner_of(alone) is None
    install("another-fidelity", "fidelity", "shipped-fidelity")  # same role: not the slider's other end
    assert partner_of(alone) is None
    install("later-perceptual", "perceptual", "shipped-fidelity")
    found = partner_of(alone)
    assert found is not None and found.name == "later-perceptual"
    assert partner_of(read_card(store / "later-perceptual.safetensors")).name == "shipped-fidelity"


def test_rebase_moves_a_perceptual_end_by_its_fidelity_partners_change(tmp_path) -> None:
    """The slider mixes the two ends' parameters: after the fidelity weights are trained further, the rebased
    perceptual end differs from the new fidelity weights exactly as the old end differed from the old ones."""
    from hifacegan.weights.rebase import main as rebase_main

    paths = {}
    for seed, name, role in ((0, "old", "fidelity"), (1, "new", "fidelity"), (2, "perc", "perceptual")):
        torch.manual_seed(seed)
        card = _lite_card(role=role)
        card.name = name
        paths[name] = tmp_path / f"{name}.safetensors"
        save_weights(paths[name], build_generator("hifacegan-lite-128", ngf=4), card, dtype=torch.float16)
    out = tmp_path / "moved.safetensors"
    assert rebase_main([str(paths["perc"]), str(paths["old"]), str(paths["new"]), "--out", str(out)]) == 0
    moved, card = read_weights(out, verify=True)
    (old, _), (new, _), (perc, _) = (read_weights(paths[n]) for n in ("old", "new", "perc"))
    assert card.name == "perc" and card.role == "perceptual" and "rebase" in card.training["rebased"]
    for key, value in moved.items():
        expected = perc[key].float() - old[key].float()
        assert torch.allclose(value - new[key].float(), expected, atol=1e-6), key
    assert not torch.equal(moved["to_rgbs.3.weight"], perc["to_rgbs.3.weight"].float())

    other = tmp_path / "other.safetensors"
    card = _lite_card()
    card.config_overrides = {"ngf": 8}
    save_weights(other, build_generator("hifacegan-lite-128", ngf=8), card)
    with pytest.raises(WeightsError, match="not the same network|differs in shape"):
        rebase_main(
            [str(paths["perc"]), str(paths["old"]), str(other), "--out", str(tmp_path / "x.safetensors")]
        )
    assert not (tmp_path / "x.safetensors").exists()
