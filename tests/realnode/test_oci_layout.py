"""The one OCI image layout `make images` keeps every image in: a layer two images share
is stored once (CI's disk ran out when the trainer image's 3 GB of layers were archived
again under every image built on it), an image leaves as a stream of its own blobs only,
and what a rebuilt image left behind is deleted, what another image still uses is not."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from gentrain_localcluster.realnode import oci_layout

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def blob(layout: Path, content: bytes) -> dict[str, object]:
    digest = hashlib.sha256(content).hexdigest()
    path = layout / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return {"digest": f"sha256:{digest}", "size": len(content)}


def add_image(layout: Path, ref: str, layers: list[bytes]) -> dict[str, object]:
    """An image as buildah's `push oci:LAYOUT:REF` leaves it: its blobs, and index.json's
    entry for REF replacing any earlier one."""
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    config = blob(layout, json.dumps({"ref": ref, "layers": len(layers)}).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config,
        "layers": [blob(layout, layer) for layer in layers],
    }
    descriptor = {
        "mediaType": MANIFEST,
        **blob(layout, json.dumps(manifest).encode()),
        "annotations": {oci_layout.REF_NAME: ref},
    }
    index = oci_layout.index(layout)
    index["manifests"] = [
        m for m in index["manifests"] if m["annotations"][oci_layout.REF_NAME] != ref
    ] + [descriptor]
    (layout / "index.json").write_text(json.dumps(index))
    return manifest


def blob_count(layout: Path) -> int:
    return len(list((layout / "blobs" / "sha256").iterdir()))


TORCH = b"torch " * 1000
TRAINER = "localhost/gentrain-trainer:dev"
USERS = "localhost/plain-loop:dev"


def test_an_image_leaves_the_layout_as_its_own_blobs_only(tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    trainer = add_image(layout, TRAINER, [b"python", TORCH])
    users = add_image(layout, USERS, [b"python", TORCH, b"plain_loop.py"])
    # python and torch once, plus each image's config, manifest and own layer
    assert blob_count(layout) == 2 + 2 + 2 + 1

    stream = io.BytesIO()
    oci_layout.write_image_tar(layout, TRAINER, stream)
    stream.seek(0)
    with tarfile.open(fileobj=stream) as archive:
        names = set(archive.getnames())
        index = json.load(archive.extractfile("index.json"))  # type: ignore[arg-type]
    assert [m["annotations"][oci_layout.REF_NAME] for m in index["manifests"]] == [TRAINER]
    wanted = {trainer["config"]["digest"], *(layer["digest"] for layer in trainer["layers"])}  # type: ignore[index, union-attr]
    assert {f"blobs/sha256/{d.split(':')[1]}" for d in wanted} <= names
    assert not any(
        f"blobs/sha256/{layer['digest'].split(':')[1]}" in names  # type: ignore[index]
        for layer in users["layers"][2:]  # type: ignore[index]
    ), "the trainer's stream carried the user image's own layer"
    assert {"oci-layout", "index.json"} <= names
    assert oci_layout.image_bytes(layout, TRAINER) == sum(
        path.stat().st_size
        for path in (layout / "blobs" / "sha256").iterdir()
        if f"blobs/sha256/{path.name}" in names
    )


def test_a_rebuilt_image_leaves_nothing_behind_that_no_image_uses(tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    add_image(layout, TRAINER, [b"python", TORCH, b"trainer code v1"])
    add_image(layout, USERS, [b"python", TORCH, b"plain_loop.py"])
    before = blob_count(layout)
    add_image(layout, TRAINER, [b"python", TORCH, b"trainer code v2"])
    freed = oci_layout.collect_garbage(layout)
    # the old code layer, config and manifest went; torch, still under both, stayed
    assert freed > 0
    assert blob_count(layout) == before
    assert oci_layout.manifest_of(layout, USERS) is not None
    for ref in (TRAINER, USERS):
        oci_layout.write_image_tar(layout, ref, io.BytesIO())  # every blob still there


def test_an_image_the_layout_lacks_is_named_with_how_to_build_it(tmp_path: Path) -> None:
    assert oci_layout.main(["has", str(tmp_path / "none"), TRAINER]) == 1
    with pytest.raises(LookupError, match="make images"):
        oci_layout.write_image_tar(tmp_path / "none", TRAINER, io.BytesIO())


def test_sizes_read_in_their_own_unit() -> None:
    # the pause image read "0 MB compressed"
    assert [oci_layout.human(n) for n in (3_298_549_248, 92_591_104, 329_728)] == [
        "3.3 GB",
        "93 MB",
        "330 kB",
    ]
