#!/usr/bin/env bash
# `make images`: both images, built from their Dockerfiles as users build them, without a
# Docker engine or a registry:
#   1. a Python 3.11 base from Debian's packages (mmdebstrap --variant=minbase: python3,
#      a venv at /opt/python whose `python` and `pip` come first on PATH, the system CA
#      store), committed by buildah as localhost/gentrain-python:3.11;
#   2. `buildah bud` of ./Dockerfile and trainer_image/Dockerfile with
#      BASE_IMAGE=localhost/gentrain-python:3.11, tagged localhost/gentrain-operator:dev
#      and localhost/gentrain-trainer:dev;
#   3. each written to an OCI archive under .images/, and imported into the node's
#      containerd (namespace k8s.io) when one is running.
#   4. the pause image the real node's pod sandboxes run (upstream's pause.c, static);
#   5. the monitoring tier's Prometheus and config-reloader images (static Go binaries);
#   6. localhost/plain-loop:dev, a user's image (examples/sdk/Dockerfile) on the trainer image.
# Each image is rebuilt only when its inputs changed. Needs root, and Debian's buildah and
# mmdebstrap (and containerd's ctr to import). `images.sh operator|trainer|plain-loop|pause|monitoring` builds one;
# `images.sh huggingface-gpt2|lightning-regression` the adapters' example images (on demand).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.images
STAMPS=$OUT/stamps
BASE=localhost/gentrain-python:3.11
PAUSE=localhost/gentrain-pause:3.10
mkdir -p "$STAMPS"

missing=()
[[ $(id -u) == 0 ]] || missing+=("root (buildah's chroot isolation and containerd need it here)")
command -v buildah >/dev/null || missing+=("buildah: apt-get install buildah")
command -v mmdebstrap >/dev/null || missing+=("mmdebstrap: apt-get install mmdebstrap")
if ((${#missing[@]})); then
  printf 'images: cannot build here; missing:\n' >&2
  printf '  - %s\n' "${missing[@]}" >&2
  printf 'With Docker instead: docker build -t localhost/gentrain-operator:dev . && docker build -f trainer_image/Dockerfile -t localhost/gentrain-trainer:dev .\n' >&2
  exit 1
fi

# vfs: the overlay driver needs a filesystem this host's /var may not give it.
BUILDAH=(buildah --storage-driver vfs)
# Behind a TLS-intercepting proxy pip inside the build must trust what the host trusts:
# the host's CA bundle is mounted into RUN steps (never copied into an image).
MOUNTS=()
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
  MOUNTS+=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
fi

# `fingerprint FILE...`: one hash of the named files' contents (and their names).
fingerprint() { (printf '%s\n' "$@"; cat "$@") | sha256sum | cut -d' ' -f1; }

up_to_date() { [[ -f "$OUT/$1.tar" && "$(cat "$STAMPS/$1" 2>/dev/null)" == "$2" ]]; }

import() {
  local name=$1
  if command -v ctr >/dev/null && [[ -S /run/containerd/containerd.sock ]]; then
    ctr -n k8s.io images import "$OUT/$name.tar" >/dev/null
    echo "images: $name imported into containerd (k8s.io)"
  fi
}

build_base() {
  local want; want=$(echo "bookworm python3 python3-venv ca-certificates $(mmdebstrap --version)" | sha256sum | cut -d' ' -f1)
  if up_to_date gentrain-python "$want" && "${BUILDAH[@]}" inspect "$BASE" >/dev/null 2>&1; then
    echo "images: $BASE up to date"
    return
  fi
  echo "images: building $BASE from Debian's packages (mmdebstrap, about a minute)"
  local started=$SECONDS rootfs=$OUT/gentrain-python.rootfs.tar
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
    --customize-hook='chroot "$1" python3 -m venv /opt/python' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/locale/*' \
    bookworm "$rootfs"
  local c; c=$("${BUILDAH[@]}" from scratch)
  "${BUILDAH[@]}" add "$c" "$rootfs" / >/dev/null
  "${BUILDAH[@]}" config \
    --env PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --cmd python "$c"
  "${BUILDAH[@]}" commit --quiet "$c" "$BASE" >/dev/null
  "${BUILDAH[@]}" rm "$c" >/dev/null
  "${BUILDAH[@]}" push --quiet "$BASE" "oci-archive:$OUT/gentrain-python.tar:$BASE"
  rm -f "$rootfs"
  echo "$want" > "$STAMPS/gentrain-python"
  echo "images: built $BASE in $((SECONDS - started)) s ($(du -h "$OUT/gentrain-python.tar" | cut -f1) archived)"
}

# `build NAME DOCKERFILE BASE SOURCES...`: localhost/NAME:dev from DOCKERFILE on the
# image BASE (one of these, its stamp among the inputs), if its inputs changed.
build() {
  local name=$1 dockerfile=$2 base=$3; shift 3
  local files; mapfile -t files < <(git ls-files -- "$dockerfile" "$@")
  local base_stamp=$STAMPS/${base#localhost/}; base_stamp=${base_stamp%:*}
  local want; want=$(fingerprint "${files[@]}" "$base_stamp")
  local tag=localhost/$name:dev
  if up_to_date "$name" "$want"; then
    echo "images: $tag up to date"
    import "$name"
    return
  fi
  echo "images: building $tag from $dockerfile"
  local started=$SECONDS
  "${BUILDAH[@]}" bud --quiet --isolation chroot --layers=false "${MOUNTS[@]}" \
    --build-arg BASE_IMAGE="$base" -f "$dockerfile" -t "$tag" .
  rm -f "$OUT/$name.tar"
  "${BUILDAH[@]}" push --quiet "$tag" "oci-archive:$OUT/$name.tar:$tag"
  echo "$want" > "$STAMPS/$name"
  # The image this one replaced is left untagged; with the vfs driver it holds a full
  # copy of every layer (6 GB for the trainer): drop it. An image built on another of
  # ours is a leaf (a user's image): its archive is all that is needed, so its own
  # 6 GB copy goes too.
  local size; size=$("${BUILDAH[@]}" images --format '{{.Size}}' "$tag" | head -1)
  [[ $base == "$BASE" ]] || "${BUILDAH[@]}" rmi "$tag" >/dev/null
  "${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true
  echo "images: built $tag in $((SECONDS - started)) s: $size ($(du -h "$OUT/$name.tar" | cut -f1) archived)"
  import "$name"
}

# The pod sandbox's pause image, for the real node: upstream's pause.c (from the Kubernetes
# module, as the Go module proxy serves it) compiled static, alone in an image.
build_pause() {
  local dir; dir=$(cd tools/k8s && go mod download -json k8s.io/kubernetes | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  local source=$dir/build/pause/linux/pause.c tag=$PAUSE
  [[ -f $source ]] || { echo "images: $source not found (go mod download k8s.io/kubernetes failed?)" >&2; exit 1; }
  local want; want=$( (cat "$source"; gcc --version | head -1) | sha256sum | cut -d' ' -f1)
  if up_to_date gentrain-pause "$want"; then
    echo "images: $tag up to date"
    return
  fi
  local started=$SECONDS work; work=$(mktemp -d)
  gcc -Os -static -Wall -Werror -DVERSION=v3.10-gentrain -o "$work/pause" "$source"
  strip "$work/pause"
  local c; c=$("${BUILDAH[@]}" from scratch)
  "${BUILDAH[@]}" copy --quiet "$c" "$work/pause" /pause >/dev/null
  "${BUILDAH[@]}" config --entrypoint '["/pause"]' --user 65535:65535 "$c"
  "${BUILDAH[@]}" commit --quiet "$c" "$tag" >/dev/null
  "${BUILDAH[@]}" rm "$c" >/dev/null
  rm -f "$OUT/gentrain-pause.tar"
  "${BUILDAH[@]}" push --quiet "$tag" "oci-archive:$OUT/gentrain-pause.tar:$tag"
  rm -rf "$work"
  echo "$want" > "$STAMPS/gentrain-pause"
  echo "images: built $tag in $((SECONDS - started)) s ($(du -h "$OUT/gentrain-pause.tar" | cut -f1) archived)"
}

# `build_static NAME TAG BINARY`: the monitoring tier's images, one static Go binary each
# at the path its upstream image uses (/bin/NAME), as nobody (65534): what
# prometheus-operator runs in the Prometheus pods it makes (their upstream images are in a
# registry this machine cannot reach). Built by `setup.sh node` into .tools/bin.
build_static() {
  local name=$1 tag=$2 binary=.tools/bin/$1
  [[ -x $binary ]] || { echo "images: $binary is built by scripts/setup.sh node" >&2; exit 1; }
  local want; want=$(fingerprint "$binary")
  if up_to_date "$name" "$want"; then
    echo "images: $tag up to date"
    return
  fi
  local started=$SECONDS c; c=$("${BUILDAH[@]}" from scratch)
  "${BUILDAH[@]}" copy --quiet "$c" "$binary" "/bin/$name" >/dev/null
  "${BUILDAH[@]}" config --entrypoint "[\"/bin/$name\"]" --user 65534:65534 "$c"
  "${BUILDAH[@]}" commit --quiet "$c" "$tag" >/dev/null
  "${BUILDAH[@]}" rm "$c" >/dev/null
  rm -f "$OUT/$name.tar"
  "${BUILDAH[@]}" push --quiet "$tag" "oci-archive:$OUT/$name.tar:$tag"
  "${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true
  echo "$want" > "$STAMPS/$name"
  echo "images: built $tag in $((SECONDS - started)) s ($(du -h "$OUT/$name.tar" | cut -f1) archived)"
  import "$name"
}

which=${1:-all}
if [[ $which == all || $which == monitoring ]]; then
  build_static prometheus localhost/prometheus:v3.16.0
  build_static prometheus-config-reloader localhost/prometheus-config-reloader:v0.85.0
fi
[[ $which == monitoring ]] && exit 0
if [[ $which == all || $which == pause ]]; then
  build_pause
fi
[[ $which == pause ]] && exit 0
build_base
if [[ $which == all || $which == operator ]]; then
  build gentrain-operator Dockerfile "$BASE" contract operator
fi
if [[ $which == all || $which == trainer ]]; then
  build gentrain-trainer trainer_image/Dockerfile "$BASE" contract sdk trainer_image
fi
# A user's own program in a user's image (examples/custom-plain-loop.yaml), on the trainer
# image as its torch base: where users take torch from PyPI or PyTorch's index, this
# machine can only reach PyPI, and the trainer image already holds torch from there.
if [[ $which == all || $which == plain-loop ]]; then
  build plain-loop examples/sdk/Dockerfile localhost/gentrain-trainer:dev contract sdk examples/sdk/plain_loop.py
fi
# The two adapters' example images, on demand only (`images.sh huggingface-gpt2` or
# `lightning-regression`; not part of `make images`: each is the trainer image again,
# 6 GB, for tests that then run where they are built).
if [[ $which == huggingface-gpt2 ]]; then
  build huggingface-gpt2 examples/sdk/Dockerfile.huggingface localhost/gentrain-trainer:dev contract sdk examples/sdk/huggingface_gpt2.py
fi
if [[ $which == lightning-regression ]]; then
  build lightning-regression examples/sdk/Dockerfile.lightning localhost/gentrain-trainer:dev contract sdk examples/sdk/lightning_regression.py
fi
