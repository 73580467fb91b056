"""Write an open-set identification split of a folder of identity folders (NAME/photo.jpg).

People with two or more images: the first image (sorted by name) goes to the gallery, the
others are mated probes. People with one image are non-mated probes (not enrolled).

Usage::

    .venv/bin/python scripts/make_identify_split.py /work/shared/data/lfw-dev/images \
        --out /tmp/ft-split
    facetrace eval identify --images /work/shared/data/lfw-dev/images \
        --gallery /tmp/ft-split/gallery.txt --probes /tmp/ft-split/probes.txt \
        --nonmated /tmp/ft-split/nonmated.txt

Writes gallery.txt, probes.txt and nonmated.txt (paths relative to the folder).
"""

from __future__ import annotations

import argparse
from pathlib import Path

SUFFIXES = {".jpg", ".jpeg", ".png"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    gallery: list[str] = []
    probes: list[str] = []
    nonmated: list[str] = []
    for person in sorted(p for p in args.images.iterdir() if p.is_dir()):
        files = sorted(
            f.relative_to(args.images).as_posix()
            for f in person.iterdir()
            if f.suffix.lower() in SUFFIXES
        )
        if len(files) >= 2:
            gallery.append(files[0])
            probes.extend(files[1:])
        elif files:
            nonmated.extend(files)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, items in (("gallery", gallery), ("probes", probes), ("nonmated", nonmated)):
        (args.out / f"{name}.txt").write_text("\n".join(items) + "\n")
    print(f"gallery {len(gallery)}, mated probes {len(probes)}, non-mated probes {len(nonmated)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
