"""BUSI's lesion images in fewer bytes, to carry to a machine that cannot read ``../shared`` (a GPU box with a
size limit on what travels), and back to PNG there, pixel for pixel.

    python benchmarks/carry_busi.py pack DEST [--busi DIR]     # the images the manifest uses, as lossless WebP
    python benchmarks/carry_busi.py unpack SRC DEST            # PNGs again, each checked against its digest

Only what ``liverclick data busi`` reads travels: the benign and malignant images outside the label-conflict
groups, their masks and BUSI's manifest. Lossless WebP takes ~8% less than BUSI's PNGs (ultrasound speckle
does not compress much further losslessly); every image's pixel digest is packed with it and checked on unpacking.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def digest(pixels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()[:20]


def used_rows(busi: Path) -> list[dict]:
    """BUSI's manifest rows that ``busi_manifest`` keeps (benign/malignant, no label-conflict group)."""
    with open(busi / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    mixed = {r["split_group"] for r in rows if r["near_dup_cross_label"] == "1"}
    return [r for r in rows if r["label"] in ("benign", "malignant") and r["split_group"] not in mixed]


def _pack_one(source: Path, packed: Path) -> tuple[str, int, int]:
    image = Image.open(source)
    image.save(packed, "WEBP", lossless=True, quality=100, method=6)
    return digest(np.asarray(image)), source.stat().st_size, packed.stat().st_size


def pack(busi: Path, dest: Path) -> None:
    (dest / "images").mkdir(parents=True, exist_ok=True)
    (dest / "masks").mkdir(parents=True, exist_ok=True)
    shutil.copy(busi / "manifest.csv", dest / "manifest.csv")
    rows = used_rows(busi)
    for row in rows:
        shutil.copy(busi / row["mask"], dest / row["mask"])
    names = sorted({row["image"] for row in rows})
    targets = [dest / Path(n).with_suffix(".webp") for n in names]
    with ProcessPoolExecutor() as pool:
        packed = list(pool.map(_pack_one, [busi / n for n in names], targets))
    digests = {n: d for n, (d, _, _) in zip(names, packed, strict=True)}
    (dest / "digests.json").write_text(json.dumps(digests, indent=0) + "\n")
    before, after = (sum(p[i] for p in packed) / 1e6 for i in (1, 2))
    print(f"packed {len(names)} images: {before:.1f} MB of PNG as {after:.1f} MB of WebP in {dest}")


def _unpack_one(packed: Path, expected: str, out: Path) -> str | None:
    pixels = np.asarray(Image.open(packed).convert("L"))
    if digest(pixels) != expected:
        return f"{packed}: the unpacked pixels differ from the packed image's"
    Image.fromarray(pixels).save(out)
    return None


def unpack(src: Path, dest: Path) -> None:
    (dest / "images").mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / "masks", dest / "masks", dirs_exist_ok=True)
    shutil.copy(src / "manifest.csv", dest / "manifest.csv")
    digests = json.loads((src / "digests.json").read_text())
    packed = [src / Path(name).with_suffix(".webp") for name in digests]
    with ProcessPoolExecutor() as pool:
        errors = [e for e in pool.map(_unpack_one, packed, digests.values(), [dest / n for n in digests]) if e]
    if errors:
        raise SystemExit("\n".join(errors))
    print(f"unpacked {len(digests)} images into {dest}, every image's pixels checked")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("dest", type=Path)
    p.add_argument("--busi", type=Path, default=None, help="BUSI's folder (default: $LIVERCLICK_BUSI or ../shared)")
    u = sub.add_parser("unpack")
    u.add_argument("src", type=Path)
    u.add_argument("dest", type=Path)
    args = ap.parse_args()
    if args.command == "unpack":
        unpack(args.src, args.dest)
        return
    from training.adapters import find_busi

    busi = args.busi or find_busi()
    if busi is None:
        sys.exit("BUSI not found: give --busi DIR or set LIVERCLICK_BUSI")
    pack(busi, args.dest)


if __name__ == "__main__":
    main()
