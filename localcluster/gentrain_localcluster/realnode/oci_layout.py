"""The OCI image layout `make images` writes every image into (`.images/oci`): one copy
of each blob however many images share it (the trainer image's 3 GB of torch layers sit
under every user image built on it), which images it holds, the blobs none of them needs
any more, and one image of it as the tar stream that `ctr images import -` reads.

Run as a script by `scripts/images.sh` (standard library only):
    oci_layout.py has LAYOUT REF    exit 0 when LAYOUT holds the image REF
    oci_layout.py gc LAYOUT         deletes the blobs no image of LAYOUT refers to
    oci_layout.py tar LAYOUT REF    writes the image REF to stdout as an OCI archive
    oci_layout.py size LAYOUT REF   prints the bytes of REF's blobs (compressed), humanly
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path
from typing import IO, Any

REF_NAME = "org.opencontainers.image.ref.name"
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


def blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, encoded = digest.partition(":")
    return layout / "blobs" / algorithm / encoded


def index(layout: Path) -> dict[str, Any]:
    path = layout / "index.json"
    if not path.exists():
        return {"schemaVersion": 2, "manifests": []}
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def manifest_of(layout: Path, ref: str) -> dict[str, Any] | None:
    """The descriptor index.json gives the image named `ref` (the last, if several)."""
    found = [m for m in index(layout)["manifests"] if m.get("annotations", {}).get(REF_NAME) == ref]
    return found[-1] if found else None


def digests_under(layout: Path, descriptor: dict[str, Any]) -> list[str]:
    """The descriptor's own blob and every blob it refers to: a manifest's config and
    layers, an index's manifests (each in turn)."""
    digest: str = descriptor["digest"]
    document = json.loads(blob_path(layout, digest).read_bytes())
    found = [digest]
    if descriptor.get("mediaType") in INDEX_TYPES or "manifests" in document:
        for child in document.get("manifests", []):
            found += digests_under(layout, child)
        return found
    found.append(document["config"]["digest"])
    found += [layer["digest"] for layer in document.get("layers", [])]
    return found


def image_bytes(layout: Path, ref: str) -> int:
    descriptor = manifest_of(layout, ref)
    if descriptor is None:
        raise LookupError(f"{layout} holds no image {ref}: `make images` builds it")
    digests = dict.fromkeys(digests_under(layout, descriptor))
    return sum(blob_path(layout, digest).stat().st_size for digest in digests)


def human(size: int) -> str:
    """3.3 GB, 93 MB, 330 kB: a size in the unit it reads best in."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}" if unit == "GB" else f"{size / scale:.0f} {unit}"
    return f"{size / 1e3:.0f} kB"


def collect_garbage(layout: Path) -> int:
    """Deletes the blobs no image of the layout refers to (an image rebuilt under the same
    name leaves its old layers behind); returns the bytes freed."""
    wanted: set[str] = set()
    for descriptor in index(layout)["manifests"]:
        wanted.update(digests_under(layout, descriptor))
    freed = 0
    for path in (layout / "blobs").glob("*/*"):
        if f"{path.parent.name}:{path.name}" not in wanted:
            freed += path.stat().st_size
            path.unlink()
    return freed


def write_image_tar(layout: Path, ref: str, out: IO[bytes]) -> None:
    """The image `ref` alone, as an OCI archive (its own index.json and only its blobs),
    streamed to `out`: nothing is written to disk."""
    descriptor = manifest_of(layout, ref)
    if descriptor is None:
        raise LookupError(f"{layout} holds no image {ref}: `make images` builds it")
    own_index = {"schemaVersion": 2, "manifests": [descriptor]}
    with tarfile.open(fileobj=out, mode="w|") as archive:
        _add_bytes(archive, "oci-layout", (layout / "oci-layout").read_bytes())
        _add_bytes(archive, "index.json", json.dumps(own_index).encode())
        for digest in dict.fromkeys(digests_under(layout, descriptor)):
            path = blob_path(layout, digest)
            archive.add(path, arcname=str(path.relative_to(layout)))


def _add_bytes(archive: tarfile.TarFile, name: str, content: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size = len(content)
    member.mode = 0o644
    archive.addfile(member, io.BytesIO(content))


def main(argv: list[str]) -> int:
    usage = "usage: oci_layout.py has LAYOUT REF | gc LAYOUT | tar LAYOUT REF | size LAYOUT REF"
    if len(argv) < 2:
        print(usage, file=sys.stderr)
        return 2
    command, layout = argv[0], Path(argv[1])
    if command == "has" and len(argv) == 3:
        return 0 if manifest_of(layout, argv[2]) is not None else 1
    if command == "gc" and len(argv) == 2:
        freed = collect_garbage(layout)
        if freed:
            print(f"images: {freed / 2**20:.0f} MiB of blobs no image uses any more removed")
        return 0
    if command == "size" and len(argv) == 3:
        size = image_bytes(layout, argv[2])
        print(human(size))
        return 0
    if command == "tar" and len(argv) == 3:
        write_image_tar(layout, argv[2], sys.stdout.buffer)
        return 0
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
