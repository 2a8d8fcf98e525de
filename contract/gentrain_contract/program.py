"""What the operator gives a training program's pod, and what it expects back: where the
configuration, the checkpoints and the data are, which environment names them, how the
program says it is done. The built-in trainer and gentrain-sdk read these; the operator's
pod builder writes them."""

from __future__ import annotations

# The environment of the program's container, set by the operator.
JOB_VARIABLE = "GENTRAIN_JOB"  # the job's name: the program runs under gentrain
CONFIG_VARIABLE = "GENTRAIN_CONFIG"  # the configuration file (CONFIG_PATH)
CHECKPOINT_DIR_VARIABLE = "GENTRAIN_CHECKPOINT_DIR"  # the job's checkpoint volume
METRICS_PORT_VARIABLE = "GENTRAIN_METRICS_PORT"  # where the operator scrapes
CPU_LIMIT_VARIABLE = "GENTRAIN_CPU_LIMIT"  # the container's CPU limit: torch's threads
# The pod's own address, in a job of several pods: where its peers reach its ranks.
POD_IP_VARIABLE = "GENTRAIN_POD_IP"
# Where rank 0's pod listens for the others to join (torchrun's static rendezvous).
RENDEZVOUS_PORT = 29500

DEFAULT_METRICS_PORT = 9090
CONFIG_PATH = "/etc/gentrain/config.yaml"  # the job's ConfigMap, mounted
CONFIG_KEY = "config.yaml"  # the ConfigMap's key, mounted at CONFIG_PATH
CHECKPOINT_DIR = "/var/lib/gentrain/checkpoints"
DATA_DIR = "/data"
# The ids of the one-shot commands the program has applied, in its checkpoint directory:
# a restarted program must not apply a command a second time.
APPLIED_COMMANDS_FILE = "commands-applied.json"

# The pod's terminationMessagePath: a finished program writes its outcome there, and the
# operator marks the job Succeeded only after it has read the final milestone.
TERMINATION_LOG = "/dev/termination-log"
# How long a finished program waits for the operator's scrape of its final milestone;
# the operator gives the pod this much more grace.
FINAL_SCRAPE_WAIT_SECONDS = 120.0
