"""``hifacegan weights``: list, inspect, import, download and verify weights files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "weights",
        help="list, inspect, import, download and verify weights",
        description="Manage HiFaceGAN weights. Names resolve from your weights folder, then the package's "
        "embedded defaults; any command also takes a path to a .safetensors file.",
    )
    cmds = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    cmds.add_parser("list", help="list installed weights (yours and the embedded defaults)").add_argument(
        "--json", action="store_true", help="print JSON"
    )
    info = cmds.add_parser("info", help="show a weights file's model card")
    info.add_argument("name", help="weights name or path")
    info.add_argument("--json", action="store_true", help="print the card as JSON")
    imp = cmds.add_parser(
        "import",
        help="convert a released .pth checkpoint (a bare state_dict) into a weights file",
        description="Validate every key and shape of a released HiFaceGAN checkpoint against --config, then store "
        "it in your weights folder as NAME.safetensors with a model card. The released checkpoints are all "
        "lipspade-512 (face_renov, x4sr, x16); one may be spade-512.",
    )
    imp.add_argument("path", type=Path, help="the .pth file")
    imp.add_argument(
        "--config", required=True, help="network config, e.g. lipspade-512 (see `hifacegan weights configs`)"
    )
    imp.add_argument("--name", required=True, help="name to store it under")
    imp.add_argument(
        "--output",
        choices=["unit", "symmetric"],
        default="unit",
        help="output convention; the release uses tanh output as a [0,1] image ('unit', default)",
    )
    imp.add_argument("--out-dir", type=Path, default=None, help="store here instead of your weights folder")
    imp.add_argument("--overwrite", action="store_true", help="replace an existing file of that name")
    dl = cmds.add_parser("download", help="download weights by URL (sha256-checked) into your weights folder")
    dl.add_argument("url", help="URL of a .safetensors or .pth file, or a known name")
    dl.add_argument("--sha256", help="expected sha256 of the file (strongly recommended)")
    dl.add_argument("--name", help="name to store it under (default: from the URL)")
    dl.add_argument("--config", help="network config, needed for .pth files")
    ver = cmds.add_parser("verify", help="check weights files against the sha256 in their model cards")
    ver.add_argument("names", nargs="*", help="names or paths (default: all installed)")
    cmds.add_parser("configs", help="list the network configs weights can be built for")


def run(args: argparse.Namespace) -> int:
    from hifacegan import weights as W

    try:
        return _ACTIONS[args.weights_command](args, W)
    except W.WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _list(args, W) -> int:
    entries = W.list_weights()
    rows = []
    for e in entries:
        try:
            card = W.read_card(e.path)
            rows.append(
                {
                    "name": e.name,
                    "source": e.source,
                    "config": card.config,
                    "size": card.size,
                    "role": card.role,
                    "path": str(e.path),
                }
            )
        except W.WeightsError as exc:
            rows.append({"name": e.name, "source": e.source, "error": str(exc), "path": str(e.path)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no weights installed (your weights folder: {W.user_weights_dir()})")
        return 0
    for r in rows:
        detail = r.get("error") or f"{r['config']} @ {r['size']}px" + (
            f", {r['role']}" if r.get("role") else ""
        )
        print(f"{r['name']:32s} {r['source']:9s} {detail}")
    return 0


def _info(args, W) -> int:
    entry = W.resolve(args.name)
    card = W.read_card(entry.path)
    if args.json:
        data = json.loads(card.to_json())
        data["path"] = str(entry.path)
        print(json.dumps(data, indent=2))
    else:
        print(f"path: {entry.path} ({entry.source})")
        print(card.to_markdown())
    return 0


def _import(args, W) -> int:
    from hifacegan.weights.import_pth import import_released

    dest = import_released(args.path, args.config, args.name, args.out_dir, args.output, args.overwrite)
    print(f"imported {args.path} as {args.name!r} -> {dest}")
    return 0


def _download(args, W) -> int:
    from hifacegan.weights.download import REMOTE, download_file
    from hifacegan.weights.import_pth import import_released

    url, sha, config = args.url, args.sha256, args.config
    if url in REMOTE:
        url, sha, config = REMOTE[url][0], sha or REMOTE[url][1], config or REMOTE[url][2]
    elif "://" not in url:
        known = ", ".join(REMOTE) or "none"
        raise W.WeightsError(f"{url!r} is neither a URL nor a known name (known: {known})")
    filename = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    name = args.name or filename.rsplit(".", 1)[0]
    if not sha:
        print("warning: no --sha256 given; the download cannot be verified", file=sys.stderr)
    if filename.endswith(".pth"):
        if not config:
            raise W.WeightsError("a .pth checkpoint needs --config (e.g. lipspade-512)")
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            pth = download_file(url, Path(tmp) / filename, sha)
            dest = import_released(pth, config, name)
    else:
        dest = download_file(url, W.user_weights_dir() / f"{name}.safetensors", sha)
        W.read_weights(dest)  # a file without a valid card or with corrupt tensors is removed
    print(f"downloaded {url} -> {dest}")
    return 0


def _verify(args, W) -> int:
    entries = [W.resolve(n) for n in args.names] if args.names else W.list_weights()
    failed = 0
    for e in entries:
        try:
            W.read_weights(e.path, verify=True)
            print(f"ok      {e.name} ({e.path})")
        except W.WeightsError as exc:
            failed += 1
            print(f"FAILED  {e.name}: {exc}")
    if not entries:
        print("no weights to verify")
    return 1 if failed else 0


def _configs(args, W) -> int:
    from hifacegan.models import generator_spec, list_generators

    for name in list_generators():
        spec = generator_spec(name)
        print(f"{name:24s} {spec.description}")
    return 0


_ACTIONS = {
    "list": _list,
    "info": _info,
    "import": _import,
    "download": _download,
    "verify": _verify,
    "configs": _configs,
}
