#!/usr/bin/env bash
# `make e2e-kind`: for users with Docker and kind (not runnable on machines without a
# Docker engine, such as gentrain's own CI). Creates a kind cluster, builds and loads
# both images, installs the chart, and runs the end-to-end scenarios against it.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in docker kind; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed for make e2e-kind" >&2; exit 1; }
done
CLUSTER=${GENTRAIN_KIND_CLUSTER:-gentrain-e2e}
kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER"
docker build -t ghcr.io/gentrain/operator:0.1.0 .
docker build -f trainer_image/Dockerfile -t ghcr.io/gentrain/trainer:0.1.0 .
kind load docker-image --name "$CLUSTER" ghcr.io/gentrain/operator:0.1.0 ghcr.io/gentrain/trainer:0.1.0
KUBECONFIG_FILE=$(mktemp)
kind get kubeconfig --name "$CLUSTER" > "$KUBECONFIG_FILE"
.tools/bin/helm --kubeconfig "$KUBECONFIG_FILE" upgrade --install gentrain helm/gentrain \
  --namespace gentrain-system --create-namespace --wait
KUBECONFIG=$KUBECONFIG_FILE GENTRAIN_TEST_CLUSTER=kubeconfig .venv/bin/python -m pytest tests/api tests/chart
