#!/usr/bin/env bash
# `make images`: both images, built from their Dockerfiles as users build them, without a
# Docker engine or a registry:
#   1. a Python 3.11 base from Debian's packages (mmdebstrap --variant=minbase: python3,
#      a venv at /opt/python whose `python` and `pip` come first on PATH, the system CA
#      store), committed by buildah as localhost/gentrain-python:3.11;
#   2. `buildah bud` of ./Dockerfile and trainer_image/Dockerfile with
#      BASE_IMAGE=localhost/gentrain-python:3.11, tagged localhost/gentrain-operator:dev
#      and localhost/gentrain-trainer:dev;
#   3. each pushed into one OCI image layout, .images/oci (a blob several images share is
#      stored once: the trainer's 3 GB of torch layers sit under every image built on
#      it), and imported into a host containerd (namespace k8s.io) when one is running;
#      the local cluster's real node imports them itself as it starts.
#   4. the pause image the real node's pod sandboxes run (upstream's pause.c, static);
#   5. the monitoring tier's Prometheus and config-reloader images (static Go binaries);
#   6. localhost/plain-loop:dev, a user's image (examples/sdk/Dockerfile) on the trainer image.
# Each image is rebuilt only when its inputs changed. Needs root, and Debian's buildah and
# mmdebstrap (and containerd's ctr to import). `images.sh operator|trainer|plain-loop|pause|monitoring` builds one;
# `images.sh huggingface-gpt2|lightning-regression` the adapters' example images (on demand).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${GENTRAIN_IMAGES_DIR:-.images}
LAYOUT=$OUT/oci
STAMPS=$OUT/stamps
LAYOUT_TOOL=(python3 localcluster/gentrain_localcluster/realnode/oci_layout.py)
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

# Overlay storage keeps each layer once; vfs copies every layer whole (the trainer image's
# 6 GB again for its build container, its commit and each image built on it: CI's disk
# ran out that way). vfs only where overlay cannot work: no overlay in the kernel, or a
# storage directory that is itself on overlayfs (a container's root).
STORAGE=/var/lib/containers/storage
mkdir -p "$STORAGE"
DRIVER=vfs
if { grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null; } &&
  [[ $(stat -f -c %T "$STORAGE") != overlayfs ]]; then
  DRIVER=overlay
fi
BUILDAH=(buildah --storage-driver "$DRIVER")
# Our images that earlier builds left in vfs storage (before overlay was used here):
# gigabytes of copies that nothing reads any more. Nobody else's are touched.
OURS='^localhost/(gentrain-[a-z]+|prometheus|prometheus-config-reloader|plain-loop|huggingface-gpt2|lightning-regression):'
if [[ $DRIVER == overlay && -d $STORAGE/vfs-images ]]; then
  mapfile -t stale < <(buildah --storage-driver vfs images --format '{{.Name}}:{{.Tag}}' 2>/dev/null | grep -E "$OURS" || true)
  if ((${#stale[@]})); then
    buildah --storage-driver vfs rmi --force "${stale[@]}" >/dev/null 2>&1 || true
    buildah --storage-driver vfs rmi --prune >/dev/null 2>&1 || true
    echo "images: removed ${#stale[@]} of our images from the old vfs storage"
  fi
fi
# Behind a TLS-intercepting proxy pip inside the build must trust what the host trusts:
# the host's CA bundle is mounted into RUN steps (never copied into an image).
MOUNTS=()
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
  MOUNTS+=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
fi

# Archives of one image each, as earlier builds wrote them: the layout replaces them.
old_archives=("$OUT"/*.tar)
if [[ -e ${old_archives[0]} ]]; then
  rm -f "${old_archives[@]}"
  echo "images: removed ${#old_archives[@]} archives of the earlier layout (.images/*.tar)"
fi

# `fingerprint FILE...`: one hash of the named files' contents (and their names).
fingerprint() { (printf '%s\n' "$@"; cat "$@") | sha256sum | cut -d' ' -f1; }

# `up_to_date NAME STAMP TAG`: the layout holds TAG, built from inputs whose hash is STAMP.
up_to_date() { [[ "$(cat "$STAMPS/$1" 2>/dev/null)" == "$2" ]] && "${LAYOUT_TOOL[@]}" has "$LAYOUT" "$3"; }

# Images are written straight into the layout (`oci:$LAYOUT:TAG`, replacing the image of
# that tag), their layers compressed as they are written, never into buildah's storage:
# storage would hold a second copy of each new layer, and a push from it a third
# (uncompressed, in /var/tmp): `make images` from nothing needed 23.6 GB at its peak
# that way, 12.0 GB this way (`make bench-images`).
# `stored NAME STAMP`: then the blobs no image needs any more go, and the inputs' STAMP is kept.
stored() {
  "${LAYOUT_TOOL[@]}" gc "$LAYOUT"
  echo "$2" > "$STAMPS/$1"
}

# The compressed size of TAG in the layout (what a registry would serve: all its layers).
archived() { "${LAYOUT_TOOL[@]}" size "$LAYOUT" "$1"; }

import() {
  if command -v ctr >/dev/null && [[ -S /run/containerd/containerd.sock ]]; then
    "${LAYOUT_TOOL[@]}" tar "$LAYOUT" "$1" | ctr -n k8s.io images import - >/dev/null
    echo "images: $1 imported into containerd (k8s.io)"
  fi
}

# `need_free GB WHAT`: stops, naming what to free, unless GB gigabytes are free where the
# build writes (buildah's storage and .images/).
need_free() {
  local dir free
  for dir in "$STORAGE" "$OUT"; do
    free=$(df -Pk "$dir" | awk 'NR==2 {print int($4 / 1048576)}')
    if ((free < $1)); then
      echo "images: $2 needs about $1 GB free in $(df -P "$dir" | awk 'NR==2 {print $6}') ($dir); $free GB are." >&2
      echo "  Free some: old clones' .images/ and .cluster/, \`buildah rmi --prune\`, \`go clean -cache\`." >&2
      exit 1
    fi
  done
}

build_base() {
  local want; want=$(echo "bookworm python3 python3-venv ca-certificates $(mmdebstrap --version)" | sha256sum | cut -d' ' -f1)
  if [[ "$(cat "$STAMPS/gentrain-python" 2>/dev/null)" == "$want" ]] &&
    "${BUILDAH[@]}" inspect "$BASE" >/dev/null 2>&1; then
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
  rm -f "$rootfs"
  echo "$want" > "$STAMPS/gentrain-python"
  echo "images: built $BASE in $((SECONDS - started)) s ($("${BUILDAH[@]}" images --format '{{.Size}}' "$BASE" | head -1))"
}

# `build NAME DOCKERFILE BASE GB SOURCES...`: localhost/NAME:dev from DOCKERFILE on the
# image BASE (one of these, its stamp among the inputs), if its inputs changed; GB: the
# free space the build needs at its peak (`make bench-images` measures it).
build() {
  local name=$1 dockerfile=$2 base=$3 gb=$4; shift 4
  local files; mapfile -t files < <(git ls-files -- "$dockerfile" "$@")
  local base_stamp=$STAMPS/${base#localhost/}; base_stamp=${base_stamp%:*}
  local want; want=$(fingerprint "${files[@]}" "$base_stamp")
  local tag=localhost/$name:dev
  if up_to_date "$name" "$want" "$tag"; then
    echo "images: $tag up to date"
    import "$tag"
    return
  fi
  need_free "$gb" "building $tag"
  echo "images: building $tag from $dockerfile"
  local started=$SECONDS
  # An image built on another of ours (a user's on the trainer image) takes it from the
  # layout when an earlier run has dropped it from buildah's storage.
  # (buildah names what it pulls from a layout after the layout's path: from inside
  # $OUT that is localhost/oci, renamed at once.)
  if ! "${BUILDAH[@]}" inspect "$base" >/dev/null 2>&1; then
    local id; id=$(cd "$OUT" && "${BUILDAH[@]}" pull --quiet "oci:oci:$base")
    "${BUILDAH[@]}" tag "$id" "$base"
    "${BUILDAH[@]}" rmi localhost/oci:latest >/dev/null
  fi
  "${BUILDAH[@]}" bud --quiet --isolation chroot --layers=false --disable-compression=false \
    "${MOUNTS[@]}" --build-arg BASE_IMAGE="$base" -f "$dockerfile" -t "oci:$LAYOUT:$tag" . >/dev/null
  stored "$name" "$want"
  echo "images: built $tag in $((SECONDS - started)) s ($(archived "$tag") compressed)"
  import "$tag"
}

# The pod sandbox's pause image, for the real node: upstream's pause.c (from the Kubernetes
# module, as the Go module proxy serves it) compiled static, alone in an image.
build_pause() {
  local dir; dir=$(cd tools/k8s && go mod download -json k8s.io/kubernetes | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  local source=$dir/build/pause/linux/pause.c tag=$PAUSE
  [[ -f $source ]] || { echo "images: $source not found (go mod download k8s.io/kubernetes failed?)" >&2; exit 1; }
  local want; want=$( (cat "$source"; gcc --version | head -1) | sha256sum | cut -d' ' -f1)
  if up_to_date gentrain-pause "$want" "$tag"; then
    echo "images: $tag up to date"
    return
  fi
  local started=$SECONDS work; work=$(mktemp -d)
  gcc -Os -static -Wall -Werror -DVERSION=v3.10-gentrain -o "$work/pause" "$source"
  strip "$work/pause"
  local c; c=$("${BUILDAH[@]}" from scratch)
  "${BUILDAH[@]}" copy --quiet "$c" "$work/pause" /pause >/dev/null
  "${BUILDAH[@]}" config --entrypoint '["/pause"]' --user 65535:65535 "$c"
  "${BUILDAH[@]}" commit --quiet --disable-compression=false "$c" "oci:$LAYOUT:$tag" >/dev/null
  "${BUILDAH[@]}" rm "$c" >/dev/null
  stored gentrain-pause "$want"
  rm -rf "$work"
  echo "images: built $tag in $((SECONDS - started)) s ($(archived "$tag") compressed)"
}

# `build_static NAME TAG BINARY`: the monitoring tier's images, one static Go binary each
# at the path its upstream image uses (/bin/NAME), as nobody (65534): what
# prometheus-operator runs in the Prometheus pods it makes (their upstream images are in a
# registry this machine cannot reach). Built by `setup.sh node` into .tools/bin.
build_static() {
  local name=$1 tag=$2 binary=.tools/bin/$1
  [[ -x $binary ]] || { echo "images: $binary is built by scripts/setup.sh node" >&2; exit 1; }
  local want; want=$(fingerprint "$binary")
  if up_to_date "$name" "$want" "$tag"; then
    echo "images: $tag up to date"
    return
  fi
  local started=$SECONDS c; c=$("${BUILDAH[@]}" from scratch)
  "${BUILDAH[@]}" copy --quiet "$c" "$binary" "/bin/$name" >/dev/null
  "${BUILDAH[@]}" config --entrypoint "[\"/bin/$name\"]" --user 65534:65534 "$c"
  "${BUILDAH[@]}" commit --quiet --disable-compression=false "$c" "oci:$LAYOUT:$tag" >/dev/null
  "${BUILDAH[@]}" rm "$c" >/dev/null
  stored "$name" "$want"
  echo "images: built $tag in $((SECONDS - started)) s ($(archived "$tag") compressed)"
  import "$tag"
}

# On the way out, every image of ours but the Python base leaves buildah's storage: the
# layout holds them, and an image built on one of them later takes it from there.
drop_from_storage() {
  local ours
  mapfile -t ours < <("${BUILDAH[@]}" images --format '{{.Name}}:{{.Tag}}' 2>/dev/null | grep -E "$OURS" | grep -vxF "$BASE" || true)
  if ((${#ours[@]})); then
    "${BUILDAH[@]}" rmi --force "${ours[@]}" >/dev/null 2>&1 || true
  fi
  "${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true
}
trap drop_from_storage EXIT

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
  build gentrain-operator Dockerfile "$BASE" 2 contract operator
fi
if [[ $which == all || $which == trainer ]]; then
  build gentrain-trainer trainer_image/Dockerfile "$BASE" 12 contract sdk trainer_image
fi
# A user's own program in a user's image (examples/custom-plain-loop.yaml), on the trainer
# image as its torch base: where users take torch from PyPI or PyTorch's index, this
# machine can only reach PyPI, and the trainer image already holds torch from there.
if [[ $which == all || $which == plain-loop ]]; then
  build plain-loop examples/sdk/Dockerfile localhost/gentrain-trainer:dev 9 contract sdk examples/sdk/plain_loop.py
fi
# The two adapters' example images, on demand only (`images.sh huggingface-gpt2` or
# `lightning-regression`; not part of `make images`: each is the trainer image again,
# 6 GB, for tests that then run where they are built).
if [[ $which == huggingface-gpt2 ]]; then
  build huggingface-gpt2 examples/sdk/Dockerfile.huggingface localhost/gentrain-trainer:dev 9 contract sdk examples/sdk/huggingface_gpt2.py
fi
if [[ $which == lightning-regression ]]; then
  build lightning-regression examples/sdk/Dockerfile.lightning localhost/gentrain-trainer:dev 9 contract sdk examples/sdk/lightning_regression.py
fi
