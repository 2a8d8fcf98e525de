# The two commands a newcomer needs: `make demo` and `make test`. Everything else is
# for people working on gentrain.
PY := .venv/bin/python
export GENTRAIN_REPO_ROOT := $(CURDIR)

.PHONY: setup generate test test-realnode test-monitoring lint unit fuzz demo images gpu-check bench bench-operator bench-remediation bench-pods bench-images e2e-kind cluster-up cluster-down cluster-status clean

setup:  ## Python environment and the Kubernetes/helm/Prometheus tools, built from Go modules
	@scripts/setup.sh

test: setup lint  ## the whole suite: lint, type checks, unit and cluster tests
	$(PY) -m pytest

test-realnode: setup  ## the real-node tier: images, kubelet + containerd, pods that run their images, the live monitoring stack
	@scripts/setup.sh node
	@scripts/images.sh
	GENTRAIN_NODE=kubelet $(PY) -m pytest -m realnode

test-monitoring: setup  ## only the live monitoring tests (prometheus-operator + Prometheus on the real node)
	@scripts/setup.sh node
	@scripts/images.sh
	GENTRAIN_NODE=kubelet $(PY) -m pytest -m monitoring

generate: setup  ## write what gentrain_contract defines into the CRD (its hyperparameter block and family rules)
	$(PY) scripts/generate_crd.py

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

unit: setup  ## only the tests that need no cluster
	$(PY) -m pytest -m "not cluster"

fuzz: setup  ## the parsers of untrusted input, fuzzed for 10 minutes each, random seeds (make test: 1,200 replayable runs each)
	GENTRAIN_FUZZ_SECONDS=$${GENTRAIN_FUZZ_SECONDS:-600} $(PY) -m pytest -s tests/fuzz

cluster-up: setup  ## start the local control plane in the background; writes .cluster/kubeconfig
	$(PY) -m gentrain_localcluster up

cluster-down:  ## stop it; no process is left behind
	@if [ -x $(PY) ]; then $(PY) -m gentrain_localcluster down; fi

cluster-status:
	$(PY) -m gentrain_localcluster status

demo:  ## a training job goes unhealthy and the operator remediates it
	@scripts/setup.sh demo
	@scripts/demo.sh

images:  ## both images from their Dockerfiles, by buildah on a Debian-built Python base (no Docker engine, no registry): one OCI layout, .images/oci
	@scripts/images.sh

bench-images:  ## the disk `make images` needs from nothing, at its peak and at its end (into a fresh layout under /tmp; .images is not touched)
	@dir=$$(mktemp -d); GENTRAIN_IMAGES_DIR=$$dir scripts/disk_peak.sh scripts/images.sh; rc=$$?; rm -rf "$$dir"; exit $$rc

gpu-check: setup  ## on a machine with NVIDIA GPUs: CUDA steps/s with and without bf16, NVML series, two ranks over NCCL (JSON under docs/gpu-check/)
	$(PY) scripts/gpu_check.py

bench: setup  ## timed figures, printed (never asserted in the test suite)
	$(PY) -m bench
	$(PY) -m bench.operator_scale
	$(PY) -m bench.sdk_overhead

bench-operator: setup  ## one operator, 500 jobs with simulated trainers, on the local control plane
	$(PY) -m bench.operator_scale

bench-pods: setup  ## pod create -> Running on the local cluster's node (GENTRAIN_NODE=kubelet: the real node)
	$(PY) -m bench.pod_start

bench-gang: setup  ## a job's steps/s and samples/s on two pods (torchrun, gloo) against one
	$(PY) -m bench.gang_pace

bench-remediation: setup  ## the remediation efficacy study
	$(PY) -m bench.efficacy

e2e-kind:  ## for users with Docker and kind: not runnable without a Docker engine
	@scripts/e2e-kind.sh

clean: cluster-down
	rm -rf .cluster demo-output bench-output
