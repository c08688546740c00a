"""Training throughput with 1 and 2 Ray Train workers on the same data (CPU by default).

    python -m bench.scaling [--iterations 24] [--batch 4] [--size 64]

Each configuration trains the `small` model for the same number of steps with the same global
batch; samples/s is the median over logged windows after the first (start-up excluded). The last
line is the ratio 2 workers / 1 worker.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import ray
from mlflow.tracking import MlflowClient

from components.config import CorrvosConfig, config_from_dict
from components.data.config import IngestConfig
from components.data.ingest import ingest
from pipelines.training.tracked import run_tracked_training_stage


def measure(workers: int, dataset: str, folder: Path, args: argparse.Namespace) -> float:
    config = config_from_dict(CorrvosConfig, {
        "model": {"preset": "small"},
        "loss": {"preset": "released"},
        "data": {"augment": {"crop_size": args.size}, "loader": {"num_workers": 1}},
        "train": {"preset": "demo", "iterations": args.iterations, "batch_size": args.batch, "num_workers": workers,
                  "cpus_per_worker": 1, "checkpoint_every": args.iterations, "log_every": args.log_every,
                  "image_every": 10 * args.iterations, "use_gpu": args.gpu},
        "tracking": {"mlflow_uri": f"sqlite:///{folder}/mlflow.db", "experiment": f"scaling-{workers}"},
        "storage": {"root": str(folder)},
    })
    out = run_tracked_training_stage(config, "train", [dataset], str(folder / f"workers-{workers}"))
    history = MlflowClient(config.tracking.mlflow_uri).get_metric_history(out["mlflow_run_id"], "samples_per_s")
    values = [m.value for m in sorted(history, key=lambda m: m.step)][1:]
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=24)
    parser.add_argument("--log-every", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4, help="global batch (split over the workers)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--gpu", action="store_true", help="one GPU per worker")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        dataset = str(folder / "synthetic")
        ingest("synthetic", f"videos=8,frames=12,size={args.size},seed=0", dataset, IngestConfig(engine="threads"), progress=False)
        ray.init(num_cpus=2 if not args.gpu else None, include_dashboard=False, log_to_driver=False)
        try:
            rates = {n: measure(n, dataset, folder, args) for n in (1, 2)}
        finally:
            ray.shutdown()
    for n, rate in rates.items():
        print(f"{n} worker(s): {rate:.2f} samples/s (global batch {args.batch}, {args.size}px, small preset)")
    print(f"scaling 2 vs 1 workers: {rates[2] / rates[1]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
