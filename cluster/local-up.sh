#!/usr/bin/env bash
# Start the local try-it-out cluster (moto S3, MLflow server, Ray head) on 127.0.0.1.
#   cluster/local-up.sh [--state-dir DIR] [--num-cpus N]     (default state dir: runs/local-cluster)
# Then: set -a; . runs/local-cluster/env; set +a
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3)}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m cluster.local up "$@"
