"""Face-parsing masks are used when (and only when) their weights file is present in the cache dir."""

from __future__ import annotations

import numpy as np
import torch

from hifacegan.face.parsing import FaceParser, build_parser_network, find_parsing_weights


def test_no_weights_means_no_parser(tmp_path, monkeypatch):
    monkeypatch.setenv("HIFACEGAN_CACHE_DIR", str(tmp_path))
    assert find_parsing_weights() is None
    assert FaceParser.from_cache() is None


def test_present_weights_give_a_soft_mask_zero_at_the_border(tmp_path, monkeypatch):
    monkeypatch.setenv("HIFACEGAN_CACHE_DIR", str(tmp_path))
    torch.manual_seed(0)
    torch.save(build_parser_network("bisenet").state_dict(), tmp_path / "parsing_bisenet.pth")
    parser = FaceParser.from_cache()
    assert parser is not None and parser.name == "bisenet"
    face = np.random.default_rng(0).random((128, 128, 3)).astype(np.float32)
    mask = parser.mask(face)
    assert mask.shape == (128, 128) and mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    assert mask[0].max() == 0 and mask[:, 0].max() == 0


def test_a_foreign_file_falls_back_to_rectangles(tmp_path, monkeypatch):
    monkeypatch.setenv("HIFACEGAN_CACHE_DIR", str(tmp_path))
    torch.save({"unrelated": torch.zeros(3)}, tmp_path / "parsing_bisenet.pth")
    assert FaceParser.from_cache() is None
