#!/usr/bin/env bash
# `make demo`. The operator and the trainer are not built yet (issues 3 and 4), so for now
# this proves what exists: it starts the local control plane and shows it working.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "The gentrain operator and trainer are not implemented yet; this demo only starts the"
echo "local Kubernetes control plane that they will run on, and shows its node."
.venv/bin/python -m gentrain_localcluster up
.tools/bin/kubectl --kubeconfig .cluster/kubeconfig get nodes -o wide
.venv/bin/python -m gentrain_localcluster down
exit 1
