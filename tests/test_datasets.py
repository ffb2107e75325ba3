"""Datasets of (degraded, clean) pairs, on real faces from ../shared/data and on awkward files made from them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from hifacegan.cli import main as cli_main
from hifacegan.data import FaceDegradationDataset, PairedFolderDataset, zoom_out
from hifacegan.data.files import read_rgb8
from hifacegan.degradations import degrade, fit_to_size, rng_for

SIZE = 64


@pytest.fixture(scope="module")
def face_files(shared_data: Path) -> list[Path]:
    files = sorted((shared_data / "faces-train").glob("*.jpg"))[:12]
    assert len(files) == 12
    return files


@pytest.fixture()
def clean_dir(tmp_path: Path, face_files: list[Path]) -> Path:
    folder = tmp_path / "clean"
    folder.mkdir()
    for path in face_files[:6]:
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


@pytest.fixture()
def awkward_dir(tmp_path: Path, face_files: list[Path]) -> Path:
    """One real face in every format a face folder may hold, plus three unreadable files."""
    folder = tmp_path / "awkward"
    folder.mkdir()
    faces = [Image.open(path).convert("RGB") for path in face_files[:8]]
    faces[0].save(folder / "a_rgb.jpg", quality=95)
    faces[1].convert("L").save(folder / "b_gray.png")
    rgba = faces[2].convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    rgba.save(folder / "c_rgba.png")
    faces[3].convert("CMYK").save(folder / "d_cmyk.jpg", quality=95)
    gray16 = (np.asarray(faces[4].convert("L"), np.uint16) * 257).astype(np.uint16)
    Image.fromarray(gray16).save(folder / "e_gray16.png")
    rgb16 = np.asarray(faces[5], np.uint16) * 257
    cv2.imwrite(str(folder / "f_rgb16.png"), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    faces[6].convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "g_palette.png")
    faces[7].save(folder / "h_rgb.webp", lossless=True)
    full = (folder / "a_rgb.jpg").read_bytes()
    (folder / "x_truncated.jpg").write_bytes(full[: len(full) // 3])
    (folder / "y_garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 50)
    (folder / "z_empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image, not listed")
    return folder


CONVERTED = {"b_gray", "c_rgba", "d_cmyk", "e_gray16", "f_rgb16", "g_palette"}
UNREADABLE = {"x_truncated", "y_garbage", "z_empty"}


def check_sample(sample: dict, size: int = SIZE) -> None:
    assert set(sample) == {"lq", "gt", "name"}
    for key in ("lq", "gt"):
        tensor = sample[key]
        assert tensor.shape == (3, size, size) and tensor.dtype == torch.float32
        assert float(tensor.min()) >= 0.0 and float(tensor.max()) <= 1.0
    assert not torch.equal(sample["lq"], sample["gt"])


def as_uint8(tensor: torch.Tensor) -> np.ndarray:
    return (tensor.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)


# --- files of every kind --------------------------------------------------------------------------------------


def test_awkward_files_are_converted_or_skipped_never_fatal(awkward_dir):
    dataset = FaceDegradationDataset(awkward_dir, SIZE, task="full", seed=1)
    assert len(dataset) == 11  # .txt not listed
    names = []
    for index in range(len(dataset)):
        sample = dataset[index]
        check_sample(sample)
        names.append(sample["name"])
    assert not UNREADABLE & set(names)
    # The unreadable ones (all at the end, sorted by name) were replaced by the next readable file: wrapping to 0.
    assert names[-3:] == ["a_rgb"] * 3
    assert dataset.counts == {"converted": len(CONVERTED), "skipped": len(UNREADABLE)}
    assert set(dataset.skipped_names()) == UNREADABLE


def test_conversions_keep_the_picture(awkward_dir, face_files):
    gray, converted = read_rgb8(awkward_dir / "b_gray.png")
    assert converted and gray.shape == (200, 200, 3) and (gray[..., 0] == gray[..., 2]).all()
    expected_gray = np.asarray(Image.open(face_files[1]).convert("L"))
    assert np.array_equal(gray[..., 0], expected_gray)
    gray16, converted = read_rgb8(awkward_dir / "e_gray16.png")
    assert converted and np.array_equal(gray16[..., 1], np.asarray(Image.open(face_files[4]).convert("L")))
    rgb16, converted = read_rgb8(awkward_dir / "f_rgb16.png")
    assert converted and np.array_equal(rgb16, np.asarray(Image.open(face_files[5]).convert("RGB")))
    rgba, _ = read_rgb8(awkward_dir / "c_rgba.png")
    assert rgba[0].min() >= 250  # alpha runs from 0 (top row: composited over white) to 255 (bottom row)
    assert np.abs(rgba[-1].astype(int) - np.asarray(Image.open(face_files[2]).convert("RGB"))[-1]).max() <= 2
    cmyk, converted = read_rgb8(awkward_dir / "d_cmyk.jpg")
    original = np.asarray(Image.open(face_files[3]).convert("RGB"), dtype=float)
    assert converted and np.abs(cmyk - original).mean() < 6.0
    assert read_rgb8(awkward_dir / "a_rgb.jpg")[1] is False


def test_counts_from_dataloader_workers_reach_the_main_process(awkward_dir):
    dataset = FaceDegradationDataset(awkward_dir, SIZE, task="jpeg", seed=0)
    loader = DataLoader(dataset, batch_size=4, num_workers=2)
    seen = sum(len(batch["name"]) for batch in loader)
    assert seen == len(dataset)
    assert dataset.counts == {"converted": len(CONVERTED), "skipped": len(UNREADABLE)}


def test_all_unreadable_is_a_clear_error(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"junk")
    (tmp_path / "worse.png").write_bytes(b"")
    dataset = FaceDegradationDataset(tmp_path, SIZE)
    with pytest.raises(RuntimeError, match="none of the 2 files could be read"):
        dataset[0]


def test_missing_or_empty_folders_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FaceDegradationDataset(tmp_path / "nowhere", SIZE)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="holds no images"):
        FaceDegradationDataset(tmp_path / "empty", SIZE)
    (tmp_path / "file.jpg").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        FaceDegradationDataset(tmp_path / "file.jpg", SIZE)


def test_bad_arguments(clean_dir):
    with pytest.raises(ValueError, match="unknown degradation task"):
        FaceDegradationDataset(clean_dir, SIZE, task="sharpen")
    with pytest.raises(ValueError, match="size must be"):
        FaceDegradationDataset(clean_dir, 0)
    with pytest.raises(IndexError):
        FaceDegradationDataset(clean_dir, SIZE)[6]
    assert len(FaceDegradationDataset(clean_dir, SIZE, limit=2)) == 2


# --- pairs and their randomness -------------------------------------------------------------------------------


def test_pairs_are_the_resized_clean_face_and_its_degradation(clean_dir):
    dataset = FaceDegradationDataset(clean_dir, SIZE, task="mosaic16x", train=False)
    sample = dataset[0]
    clean = fit_to_size(read_rgb8(dataset.files[0])[0], SIZE)
    assert np.array_equal(as_uint8(sample["gt"]), clean)
    assert np.array_equal(as_uint8(sample["lq"]), degrade(clean, "mosaic16x"))
    assert sample["name"] == dataset.files[0].stem


def test_validation_pairs_are_fixed_per_file_and_seed_and_match_the_cli(clean_dir, tmp_path):
    dataset = FaceDegradationDataset(clean_dir, SIZE, task="full", train=False, seed=7)
    first = [dataset[i] for i in range(len(dataset))]
    again = [dataset[i] for i in range(len(dataset))]
    assert all(torch.equal(a["lq"], b["lq"]) for a, b in zip(first, again, strict=True))
    other = FaceDegradationDataset(clean_dir, SIZE, task="full", train=False, seed=8)
    assert not torch.equal(other[0]["lq"], first[0]["lq"])
    # A subset (limit) gives the same pairs for the files it keeps.
    assert torch.equal(
        FaceDegradationDataset(clean_dir, SIZE, train=False, seed=7, limit=2)[1]["lq"], first[1]["lq"]
    )
    # Exactly what `hifacegan degrade --size` writes for the file.
    out = tmp_path / "degraded"
    assert cli_main(["degrade", "--task", "full", "--seed", "7", "--size", str(SIZE), "--workers", "1",
                     str(clean_dir), str(out)]) == 0  # fmt: skip
    for sample in first:
        written = cv2.cvtColor(cv2.imread(str(out / f"{sample['name']}.png")), cv2.COLOR_BGR2RGB)
        assert np.array_equal(written, as_uint8(sample["lq"]))
    assert np.array_equal(
        as_uint8(first[0]["lq"]),
        degrade(fit_to_size(read_rgb8(dataset.files[0])[0], SIZE), "full", rng=rng_for(7, first[0]["name"])),
    )


def epoch_lq(dataset, num_workers: int, epoch: int | None = None) -> torch.Tensor:
    if epoch is not None:
        dataset.set_epoch(epoch)
    loader = DataLoader(dataset, batch_size=3, num_workers=num_workers, shuffle=False)
    return torch.cat([batch["lq"] for batch in loader])


def test_set_epoch_makes_samples_a_function_of_seed_epoch_and_index(clean_dir):
    dataset = FaceDegradationDataset(clean_dir, SIZE, task="full", seed=3)
    in_process = epoch_lq(dataset, 0, epoch=0)
    assert torch.equal(in_process, epoch_lq(dataset, 2, epoch=0))  # same with workers
    assert torch.equal(in_process, epoch_lq(dataset, 0, epoch=0))  # and again
    assert not torch.equal(in_process, epoch_lq(dataset, 2, epoch=1))
    # Persistent workers see the new epoch too (shared memory).
    loader = DataLoader(dataset, batch_size=3, num_workers=2, persistent_workers=True)
    epochs = []
    for epoch in range(2):
        dataset.set_epoch(epoch)
        epochs.append(torch.cat([batch["lq"] for batch in loader]))
    assert torch.equal(epochs[0], in_process) and not torch.equal(epochs[0], epochs[1])


def test_without_set_epoch_every_epoch_and_worker_differs_yet_reproducibly(clean_dir):
    def two_epochs(num_workers: int) -> list[torch.Tensor]:
        torch.manual_seed(0)
        dataset = FaceDegradationDataset(clean_dir, SIZE, task="denoise", seed=0)
        return [epoch_lq(dataset, num_workers) for _ in range(2)]

    for workers in (0, 2):
        first, second = two_epochs(workers)
        assert not torch.equal(first, second)
        again = two_epochs(workers)
        assert torch.equal(first, again[0]) and torch.equal(second, again[1])
    # Two workers each degrading the same file: different noise (no copied generator state).
    same_file = FaceDegradationDataset(clean_dir, SIZE, task="denoise", limit=1)
    loader = DataLoader(torch.utils.data.Subset(same_file, [0, 0, 0, 0]), batch_size=1, num_workers=2)
    lqs = [batch["lq"] for batch in loader]
    assert len({hash(t.numpy().tobytes()) for t in lqs}) == 4


def test_flips_happen_in_training_only_and_only_when_asked(clean_dir):
    clean = fit_to_size(read_rgb8(sorted(clean_dir.iterdir())[0])[0], SIZE)

    def orientations(**kwargs) -> set[str]:
        dataset = FaceDegradationDataset(clean_dir, SIZE, task="jpeg", limit=1, **kwargs)
        found = set()
        for epoch in range(12):
            dataset.set_epoch(epoch)
            gt = as_uint8(dataset[0]["gt"])
            found.add("as is" if np.array_equal(gt, clean) else "mirrored")
            assert np.array_equal(gt, clean) or np.array_equal(gt, clean[:, ::-1])
        return found

    assert orientations(train=True) == {"as is", "mirrored"}
    assert orientations(train=True, flip=False) == {"as is"}
    assert orientations(train=False) == {"as is"}


def test_zoom_out_shrinks_the_face_into_a_mirrored_frame(face_files):
    face = fit_to_size(read_rgb8(face_files[0])[0], SIZE)
    rng = np.random.default_rng(0)
    assert zoom_out(face, 1.0, rng) is face
    corners = set()
    for _ in range(20):
        framed = zoom_out(face, 0.5, rng)
        assert framed.shape == face.shape and framed.dtype == np.uint8
        # The shrunken face sits somewhere in the frame: find it exactly.
        small = cv2.resize(face, (SIZE // 2, SIZE // 2), interpolation=cv2.INTER_AREA)
        found = cv2.matchTemplate(framed, small, cv2.TM_SQDIFF)
        top, left = np.unravel_index(int(found.argmin()), found.shape)
        assert np.array_equal(framed[top : top + SIZE // 2, left : left + SIZE // 2], small)
        corners.add((int(top), int(left)))
        # Mirrored outwards: the row above the face reflects the face's second row (no hard edge).
        if top > 0:
            assert np.array_equal(framed[top - 1, left : left + SIZE // 2], small[1])
    assert len(corners) > 5  # a random offset, not always the centre
    assert zoom_out(face[:, : SIZE // 2], 0.5, rng).shape == (SIZE, SIZE // 2, 3)  # any frame keeps its shape
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="scale must be in"):
            zoom_out(face, bad, rng)


def test_zoom_out_happens_in_training_only_and_draws_nothing_when_off(clean_dir):
    plain = FaceDegradationDataset(clean_dir, SIZE, task="jpeg", limit=2)
    off = FaceDegradationDataset(clean_dir, SIZE, task="jpeg", limit=2, zoom_out_probability=0.0)
    always = FaceDegradationDataset(
        clean_dir, SIZE, task="jpeg", limit=2, flip=False, zoom_out_probability=1.0
    )
    val = FaceDegradationDataset(clean_dir, SIZE, task="jpeg", limit=2, train=False, zoom_out_probability=1.0)
    clean = fit_to_size(read_rgb8(sorted(clean_dir.iterdir())[0])[0], SIZE)
    for epoch in range(3):
        for dataset in (plain, off, always):
            dataset.set_epoch(epoch)
        # Off: the very same samples as a dataset made before the option existed.
        assert torch.equal(plain[0]["lq"], off[0]["lq"]) and torch.equal(plain[0]["gt"], off[0]["gt"])
        assert not np.array_equal(as_uint8(always[0]["gt"]), clean)
    assert np.array_equal(as_uint8(val[0]["gt"]), clean)
    for bad in ({"zoom_out_probability": 1.5}, {"zoom_out_min_scale": 0.0}):
        with pytest.raises(ValueError, match="zoom_out"):
            FaceDegradationDataset(clean_dir, SIZE, **bad)


def test_small_face_degradation_is_made_at_the_small_side_and_draws_nothing_when_off(clean_dir):
    """A face degraded as a small face of a photo is degraded at that side and enlarged back: the shrink takes the
    fine detail that a degradation at the training size would have kept."""
    from hifacegan.data.datasets import degrade_small

    plain = FaceDegradationDataset(clean_dir, SIZE, task="jpeg", limit=2)
    off = FaceDegradationDataset(clean_dir, SIZE, task="jpeg", limit=2, small_face_probability=0.0)
    always = FaceDegradationDataset(
        clean_dir, SIZE, task="jpeg", limit=2, flip=False, small_face_probability=1.0
    )
    for epoch in range(2):
        for dataset in (plain, off, always):
            dataset.set_epoch(epoch)
        assert torch.equal(plain[0]["lq"], off[0]["lq"]) and torch.equal(plain[0]["gt"], off[0]["gt"])
        assert torch.equal(always[0]["gt"], plain[0]["gt"]) or torch.equal(
            always[0]["gt"], plain[0]["gt"].flip(-1)
        )
        assert not torch.equal(always[0]["lq"], plain[0]["lq"])
    clean = fit_to_size(read_rgb8(sorted(clean_dir.iterdir())[0])[0], SIZE)

    def detail(image: np.ndarray) -> float:
        return float(np.abs(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_32F)).mean())

    small = degrade_small(clean, "jpeg", 40, np.random.default_rng(0))
    assert small.shape == clean.shape and small.dtype == np.uint8
    assert detail(small) < 0.6 * detail(clean)
    for bad in ({"small_face_probability": 1.5}, {"small_face_min_side": 8}, {"small_face_min_side": SIZE}):
        with pytest.raises(ValueError, match="small_face"):
            FaceDegradationDataset(clean_dir, SIZE, **{"small_face_probability": 0.5, **bad})


def test_any_input_size_comes_out_at_the_model_size(tmp_path, face_files):
    face = np.asarray(Image.open(face_files[0]).convert("RGB"))
    Image.fromarray(face).resize((300, 300), Image.Resampling.BICUBIC).save(tmp_path / "big.png")
    Image.fromarray(face[:, :150]).save(tmp_path / "tall.png")
    Image.fromarray(face).resize((40, 40), Image.Resampling.BICUBIC).save(tmp_path / "small.png")
    dataset = FaceDegradationDataset(tmp_path, 128, task="sr4x8x", train=False)
    for index in range(len(dataset)):
        check_sample(dataset[index], size=128)


# --- pre-made pairs -------------------------------------------------------------------------------------------


@pytest.fixture()
def paired_dirs(tmp_path, clean_dir) -> tuple[Path, Path]:
    lq = tmp_path / "lq"
    assert cli_main(["degrade", "--task", "sr4x", "--workers", "1", str(clean_dir), str(lq)]) == 0
    (lq / sorted(lq.iterdir())[0].name).unlink()  # one GT without LQ
    Image.new("RGB", (200, 200)).save(lq / "stray.png")  # one LQ without GT
    return lq, clean_dir


def test_paired_folders_match_by_name_across_extensions(paired_dirs):
    lq_dir, gt_dir = paired_dirs
    dataset = PairedFolderDataset(lq_dir, gt_dir)
    assert len(dataset) == 5
    assert dataset.unmatched["lq"] == ["stray"] and len(dataset.unmatched["gt"]) == 1
    for index in range(len(dataset)):
        sample = dataset[index]
        check_sample(sample, size=200)
        gt = read_rgb8(gt_dir / f"{sample['name']}.jpg")[0]
        assert np.array_equal(as_uint8(sample["gt"]), gt)
        assert np.array_equal(as_uint8(sample["lq"]), read_rgb8(lq_dir / f"{sample['name']}.png")[0])
    check_sample(PairedFolderDataset(lq_dir, gt_dir, size=SIZE)[0])


def test_paired_folders_resize_small_inputs_and_skip_bad_pairs(paired_dirs):
    lq_dir, gt_dir = paired_dirs
    names = sorted(p.stem for p in lq_dir.glob("*.png") if p.stem != "stray")
    small = read_rgb8(lq_dir / f"{names[0]}.png")[0][::4, ::4]
    Image.fromarray(np.ascontiguousarray(small)).save(lq_dir / f"{names[0]}.png")
    (lq_dir / f"{names[1]}.png").write_bytes(b"broken")
    dataset = PairedFolderDataset(lq_dir, gt_dir)
    assert dataset[0]["lq"].shape == (3, 200, 200)
    assert dataset[1]["name"] == names[2]  # the broken pair is replaced by the next one
    assert dataset.counts["skipped"] == 1 and dataset.skipped_names() == [names[1]]


def test_paired_folders_clear_errors(tmp_path, clean_dir):
    other = tmp_path / "other"
    other.mkdir()
    Image.new("RGB", (8, 8)).save(other / "unrelated.png")
    with pytest.raises(ValueError, match="has a partner with the same name"):
        PairedFolderDataset(other, clean_dir)
    with pytest.raises(FileNotFoundError, match="degraded \\(LQ\\) folder"):
        PairedFolderDataset(tmp_path / "none", clean_dir)
    Image.new("RGB", (8, 8)).save(other / "unrelated.jpg")
    with pytest.raises(ValueError, match="two images named 'unrelated'"):
        PairedFolderDataset(other, clean_dir)


def test_paired_flips_change_with_the_epoch(paired_dirs):
    lq_dir, gt_dir = paired_dirs
    dataset = PairedFolderDataset(lq_dir, gt_dir, flip=True, limit=1)
    plain = PairedFolderDataset(lq_dir, gt_dir, limit=1)[0]
    seen = set()
    for epoch in range(12):
        dataset.set_epoch(epoch)
        sample = dataset[0]
        mirrored = torch.equal(sample["gt"], plain["gt"].flip(-1))
        assert mirrored or torch.equal(sample["gt"], plain["gt"])
        assert torch.equal(sample["lq"], plain["lq"].flip(-1) if mirrored else plain["lq"])  # both or neither
        seen.add(mirrored)
    assert seen == {True, False}


@pytest.mark.slow
def test_spawned_workers_share_counts_and_epochs(awkward_dir):
    # macOS and Windows start DataLoader workers with spawn: the dataset and its shared memory are pickled.
    dataset = FaceDegradationDataset(awkward_dir, SIZE, task="deblur", seed=2)
    dataset.set_epoch(3)
    loader = DataLoader(dataset, batch_size=4, num_workers=1, multiprocessing_context="spawn")
    spawned = torch.cat([batch["lq"] for batch in loader])
    assert dataset.counts == {"converted": len(CONVERTED), "skipped": len(UNREADABLE)}
    assert torch.equal(spawned, torch.cat([dataset[i]["lq"].unsqueeze(0) for i in range(len(dataset))]))
