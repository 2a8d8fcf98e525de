#!/usr/bin/env bash
# `make e2e-kind`: for users with Docker and kind (not runnable on machines without a
# Docker engine, such as gentrain's own CI). Creates a kind cluster, builds and loads
# both images, and runs the API and chart tests and the realnode tier against it.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in docker kind; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed for make e2e-kind" >&2; exit 1; }
done
CLUSTER=${GENTRAIN_KIND_CLUSTER:-gentrain-e2e}
kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER"
# The same tags the realnode tier runs (tests/realnode/conftest.py), so that kind runs the
# very suite `make test-realnode` runs on the local real node; that suite installs the chart.
docker build -t localhost/gentrain-operator:dev .
docker build -f trainer_image/Dockerfile -t localhost/gentrain-trainer:dev .
kind load docker-image --name "$CLUSTER" localhost/gentrain-operator:dev localhost/gentrain-trainer:dev
KUBECONFIG_FILE=$(mktemp)
kind get kubeconfig --name "$CLUSTER" > "$KUBECONFIG_FILE"
KUBECONFIG=$KUBECONFIG_FILE GENTRAIN_TEST_CLUSTER=kubeconfig .venv/bin/python -m pytest tests/api tests/chart
KUBECONFIG=$KUBECONFIG_FILE GENTRAIN_TEST_CLUSTER=kubeconfig .venv/bin/python -m pytest -m realnode
