"""Carry a perceptual end over to retrained fidelity weights: ``python -m hifacegan.weights.rebase``.

The fidelity slider mixes the two ends' parameters (hifacegan.pipeline.fidelity), so the perceptual end must stay
close to the fidelity weights it ships with: it is fine-tuned from them. When the fidelity weights are trained
further (a fine-tune on a new degradation, say), the adversarial fine-tune would have to run again, for hours on a
CPU. Instead the perceptual end's change from its old fidelity partner is added to the new one (task arithmetic:
Ilharco et al., "Editing Models with Task Arithmetic", ICLR 2023): ``P' = F' + (P - F)``. What the slider moves
along stays exactly what it was, ``P' - F' = P - F``, from a fidelity end that is now the new one. A maintainer's
step, like hifacegan.weights.embed; the result is measured like any trained weights before it is embedded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from hifacegan.weights.format import WeightsError, read_weights, save_weights, tensor_sha256


def rebase(perceptual: Path, old_fidelity: Path, new_fidelity: Path, out: Path) -> Path:
    """Write ``perceptual + (new_fidelity - old_fidelity)`` to ``out`` (float32) with the perceptual card, which
    records both fidelity files' digests. Raises WeightsError when the three are not the same network."""
    tensors = [read_weights(path) for path in (perceptual, old_fidelity, new_fidelity)]
    (p_state, card), (f_state, f_card), (g_state, g_card) = tensors
    same_config = card.config == f_card.config == g_card.config
    same_overrides = card.config_overrides == f_card.config_overrides == g_card.config_overrides
    if not (same_config and same_overrides and p_state.keys() == f_state.keys() == g_state.keys()):
        raise WeightsError(f"{perceptual}, {old_fidelity} and {new_fidelity} are not the same network")
    state = {}
    for key, value in p_state.items():
        if value.shape != f_state[key].shape or value.shape != g_state[key].shape:
            raise WeightsError(f"{key} differs in shape between the three files: not the same network")
        if value.is_floating_point():
            state[key] = value.float() + (g_state[key].float() - f_state[key].float())
        else:
            state[key] = g_state[key].clone()  # counters (batch norm's) follow the new fidelity weights
    card.training = dict(card.training)
    card.training["rebased"] = (
        f"perceptual end moved from fidelity weights sha256 {tensor_sha256(f_state)[:12]} to "
        f"{tensor_sha256(g_state)[:12]} by adding their difference (hifacegan.weights.rebase)"
    )
    save_weights(out, state, card)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hifacegan.weights.rebase", description=__doc__)
    ap.add_argument("perceptual", type=Path, help="the perceptual end's weights file")
    ap.add_argument("old_fidelity", type=Path, help="the fidelity weights it was fine-tuned from")
    ap.add_argument("new_fidelity", type=Path, help="the retrained fidelity weights it is to pair with")
    ap.add_argument("--out", type=Path, required=True, help="where to write the moved perceptual end")
    args = ap.parse_args(argv)
    with torch.no_grad():
        out = rebase(args.perceptual, args.old_fidelity, args.new_fidelity, args.out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
