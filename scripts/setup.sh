#!/usr/bin/env bash
# Sets up everything the project needs, from PyPI and the Go module proxy only:
#   .venv/        Python environment (torch, kopf, ..., the three packages, editable)
#   .tools/bin/   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd
#                 (one binary, tools/k8s), coredns (tools/coredns), helm (tools/helm),
#                 prometheus and promtool (tools/prometheus), kueue and jobset with their
#                 CRDs (tools/kueue, tools/jobset), all built from Go modules; `setup.sh
#                 node` adds the real node (kubelet, kube-proxy) and the monitoring tier
#                 (prometheus-operator).
#   .tools/mlflow/ the MLflow tracking server the tests write to (a Python environment of its own)
# `setup.sh demo` builds only what `make demo` runs: the Python environment, tools/k8s and
# tools/coredns.
# Each part is skipped when the inputs it was built from have not changed, so a second
# run finishes in seconds.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
BIN=$ROOT/.tools/bin
STAMPS=$ROOT/.tools/stamps
mkdir -p "$BIN" "$STAMPS"

# `fingerprint FILE...` prints one hash of the files' contents.
fingerprint() { cat "$@" | sha256sum | cut -d' ' -f1; }

setup_python() {
  local inputs=(requirements-dev.txt contract/pyproject.toml sdk/pyproject.toml operator/pyproject.toml trainer_image/pyproject.toml localcluster/pyproject.toml)
  local want; want=$(fingerprint "${inputs[@]}")
  if [[ -x .venv/bin/python && "$(cat .venv/.fingerprint 2>/dev/null)" == "$want" ]]; then
    echo "python: .venv up to date"
    return
  fi
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: Python 3.11 or newer is needed (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
  fi
  # torch from PyPI pulls the CUDA libraries: the environment is about 6 GB, and pip needs
  # room to unpack the wheels beside it. Say so before pip fails with a bare ENOSPC.
  local free_gb; free_gb=$(df -Pk . | awk 'NR==2 {print int($4 / 1048576)}')
  if (( free_gb < 10 )); then
    echo "warning: $free_gb GB free on $(df -P . | awk 'NR==2 {print $6}'); the Python environment needs about 10 GB while it installs (.venv ends near 6 GB)" >&2
  fi
  echo "python: installing .venv (torch is a few GB the first time; pip's cache makes reruns quick)"
  [[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -r requirements-dev.txt
  .venv/bin/pip install --quiet --no-deps -e contract -e sdk -e operator -e trainer_image -e localcluster
  echo "$want" > .venv/.fingerprint
}

# `build_go NAME OUTPUT PACKAGE LDFLAGS` builds one Go program from tools/NAME (PACKAGE
# may be a folder of it, ./node: its Go files count towards the fingerprint too).
build_go() {
  local name=$1 output=$2 package=$3 ldflags=$4
  local sources=(tools/"$name"/go.mod tools/"$name"/go.sum)
  sources+=(tools/"$name"/*.go)
  [[ $package == ./* ]] && sources+=(tools/"$name"/"${package#./}"/*.go)
  local want; want=$( (cat "${sources[@]}"; echo "$ldflags $(go version)${CGO_ENABLED:+ cgo=$CGO_ENABLED}") | sha256sum | cut -d' ' -f1)
  if [[ -x "$BIN/$output" && "$(cat "$STAMPS/$output" 2>/dev/null)" == "$want" ]]; then
    echo "go: $output up to date"
    return
  fi
  echo "go: building $output from tools/$name (the first build takes minutes)"
  local started=$SECONDS
  (cd tools/"$name" && go build -trimpath -ldflags "$ldflags" -o "$BIN/$output" "$package")
  echo "go: built $output in $((SECONDS - started)) s"
  echo "$want" > "$STAMPS/$output"
}

setup_go() {
  if ! command -v go >/dev/null; then
    cat >&2 <<'MSG'
error: Go is not installed, so the local Kubernetes control plane cannot be built.
  Install Go 1.26 or newer (it fetches Kubernetes from the Go module proxy), or run the
  tests against an existing cluster instead:
    KUBECONFIG=/path/to/kubeconfig GENTRAIN_TEST_CLUSTER=kubeconfig make test
MSG
    exit 1
  fi
  if ! go list -m -json k8s.io/kubernetes@v1.36.3 >/dev/null 2>&1 && [[ ! -x "$BIN/k8s" ]]; then
    echo "error: the Go module proxy ($(go env GOPROXY)) cannot be reached; build the tools where it can, or use an existing cluster through KUBECONFIG (GENTRAIN_TEST_CLUSTER=kubeconfig)." >&2
    exit 1
  fi
  build_go k8s k8s . "$KUBE_LDFLAGS"
  for component in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd; do
    ln -sf k8s "$BIN/$component"
  done
  # The cluster's DNS, with only the plugins it uses (tools/coredns/main.go).
  CGO_ENABLED=0 build_go coredns coredns . "-s -w -X github.com/coredns/coredns/coremain.GitCommit=v1.14.7"
}

KUBE_LDFLAGS="-s -w \
  -X k8s.io/component-base/version.gitVersion=v1.36.3 \
  -X k8s.io/component-base/version.gitMajor=1 \
  -X k8s.io/component-base/version.gitMinor=36 \
  -X k8s.io/component-base/version.gitTreeState=clean \
  -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"

# The real node's kubelet and kube-proxy (GENTRAIN_NODE=kubelet), from the same module
# graph as the control plane: only that tier needs them.
setup_node() {
  # Debian's container runtime, CNI plugins and image builders, installed when missing
  # (as root, where apt-get is there); otherwise the node's start names what is missing.
  local want=(containerd runc containernetworking-plugins iptables conntrack buildah mmdebstrap)
  local absent=()
  for package in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || absent+=("$package")
  done
  if ((${#absent[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
      echo "node: installing Debian's ${absent[*]}"
      local started=$SECONDS
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${absent[@]}" >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${absent[@]}" >/dev/null; }
      echo "node: installed in $((SECONDS - started)) s"
    else
      echo "warning: the real node needs Debian's ${absent[*]} (apt-get install, as root)" >&2
    fi
  fi
  CGO_ENABLED=0 build_go k8s k8s-node ./node "$KUBE_LDFLAGS"
  for component in kubelet kube-proxy; do
    ln -sf k8s-node "$BIN/$component"
  done
}

# What only the tests use: helm renders the chart, promtool tests the alert rules, and
# prometheus evaluates them (the demo needs none of these).
setup_test_tools() {
  build_go helm helm helm.sh/helm/v3/cmd/helm "-s -w -X helm.sh/helm/v3/internal/version.version=v3.22.0"
  local prom_ld="-s -w -X github.com/prometheus/common/version.Version=3.16.0 -X github.com/prometheus/common/version.Branch=release-3.16"
  # Static, as upstream releases it: the same binary runs on the host and, for the
  # monitoring tier, alone in an image.
  CGO_ENABLED=0 build_go prometheus promtool github.com/prometheus/prometheus/cmd/promtool "$prom_ld"
  CGO_ENABLED=0 build_go prometheus prometheus github.com/prometheus/prometheus/cmd/prometheus "$prom_ld"
  setup_kueue
  setup_jobset
}

# Kueue, for the tests of queued jobs (marker `kueue`): its manager and its CRDs, from one
# module version (tools/kueue).
setup_kueue() {
  CGO_ENABLED=0 build_go kueue kueue sigs.k8s.io/kueue/cmd/kueue \
    "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=v0.17.0"
  local module; module=$(cd tools/kueue && go mod download -json sigs.k8s.io/kueue | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  rm -rf .tools/kueue-crds
  mkdir -p .tools/kueue-crds
  cp "$module"/config/components/crd/bases/*.yaml .tools/kueue-crds/
}

# JobSet, the engine of a job of several pods where a cluster has it (marker `jobset`):
# its controller and its CRD, from one module version (tools/jobset).
setup_jobset() {
  CGO_ENABLED=0 build_go jobset jobset sigs.k8s.io/jobset \
    "-s -w -X sigs.k8s.io/jobset/pkg/version.GitVersion=v0.11.1"
  local module; module=$(cd tools/jobset && go mod download -json sigs.k8s.io/jobset | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  rm -rf .tools/jobset-crds
  mkdir -p .tools/jobset-crds
  cp "$module"/config/components/crd/bases/*.yaml .tools/jobset-crds/
}

# The MLflow tracking server the tests write to, in its own environment (.tools/mlflow):
# its dependencies and the kubernetes client's cannot share one.
setup_mlflow_server() {
  local want; want=$(fingerprint tools/mlflow/requirements.txt)
  if [[ -x .tools/mlflow/bin/mlflow && "$(cat .tools/mlflow/.fingerprint 2>/dev/null)" == "$want" ]]; then
    echo "mlflow: .tools/mlflow up to date"
    return
  fi
  echo "mlflow: installing the tracking server into .tools/mlflow"
  local started=$SECONDS
  rm -rf .tools/mlflow
  "$PYTHON" -m venv .tools/mlflow
  .tools/mlflow/bin/pip install --quiet --upgrade pip
  .tools/mlflow/bin/pip install --quiet -r tools/mlflow/requirements.txt
  echo "$want" > .tools/mlflow/.fingerprint
  echo "mlflow: installed in $((SECONDS - started)) s"
}

# The monitoring tier (tests marked `monitoring`, on the real node): prometheus-operator
# and its config reloader, static, from tools/prometheus-operator. The operator runs on the
# host; the reloader runs in the Prometheus pods it makes (scripts/images.sh).
setup_monitoring() {
  local ld="-s -w -X github.com/prometheus/common/version.Version=0.85.0"
  CGO_ENABLED=0 build_go prometheus-operator prometheus-operator \
    github.com/prometheus-operator/prometheus-operator/cmd/operator "$ld"
  CGO_ENABLED=0 build_go prometheus-operator prometheus-config-reloader \
    github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader "$ld"
  # Its CRDs, from the same module version (the ones kube-prometheus-stack installs).
  local module; module=$(cd tools/prometheus-operator && go mod download -json github.com/prometheus-operator/prometheus-operator | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  rm -rf .tools/prometheus-operator-crds
  mkdir -p .tools/prometheus-operator-crds
  cp "$module"/example/prometheus-operator-crd/*.yaml .tools/prometheus-operator-crds/
}

# `together FUNCTION...` runs the parts at once and fails if any fails: pip mostly waits
# on the network and on unpacking torch while Go compiles, so a cold setup takes about
# as long as its longest part instead of the sum.
together() {
  local pids=() failed=0
  for part in "$@"; do
    "$part" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
  done
  return $failed
}

case "${1:-all}" in
  python) setup_python ;;
  go) setup_go; setup_test_tools ;;
  demo) together setup_python setup_go ;;
  node) setup_go; setup_node; setup_test_tools; setup_monitoring ;;
  kueue) setup_kueue ;;
  jobset) setup_jobset ;;
  all) together setup_python setup_go setup_mlflow_server; setup_test_tools ;;
  *) echo "usage: $0 [python|go|demo|node|kueue|jobset|all]" >&2; exit 2 ;;
esac
