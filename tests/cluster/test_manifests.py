"""The KubeRay manifests and the autoscaler YAML parse and say what docs/cluster.md says they do."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import jsonschema
import ray
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERAY = ROOT / "cluster" / "kuberay"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _containers(group: dict) -> list[dict]:
    return group["template"]["spec"]["containers"]


def _check_head_and_gpu_workers(spec: dict) -> None:
    head = _containers(spec["headGroupSpec"])[0]
    assert "nvidia.com/gpu" not in head["resources"]["limits"]
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert {p["containerPort"] for p in head["ports"]} >= {6379, 8265}
    gpu = [g for g in spec["workerGroupSpecs"] if g["groupName"] == "gpu"]
    assert len(gpu) == 1 and gpu[0]["minReplicas"] <= gpu[0]["replicas"] <= gpu[0]["maxReplicas"]
    worker = _containers(gpu[0])[0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"
    for container in (head, worker):
        assert "YOUR-ORG" in container["image"]  # a placeholder, never a real registry by accident
        secrets = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
        assert secrets == {"AWS_ACCESS_KEY_ID": "corrvos-s3", "AWS_SECRET_ACCESS_KEY": "corrvos-s3"}


def test_raycluster_has_a_cpu_head_and_a_gpu_worker_group():
    manifest = _load(KUBERAY / "raycluster.yaml")
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayCluster"
    assert manifest["spec"]["rayVersion"] == ray.__version__
    _check_head_and_gpu_workers(manifest["spec"])
    for group in (manifest["spec"]["headGroupSpec"], manifest["spec"]["workerGroupSpecs"][0]):
        env = {e["name"]: e.get("value") for e in _containers(group)[0]["env"]}
        assert env["MLFLOW_TRACKING_URI"].startswith("http://")


def test_rayjob_runs_the_pipeline_on_a_shipped_config():
    manifest = _load(KUBERAY / "rayjob.yaml")
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayJob"
    words = shlex.split(manifest["spec"]["entrypoint"])
    assert words[:5] == ["python", "-m", "pipelines.cli", "run", "configs/stcn-released.yaml"]
    assert (ROOT / words[4]).is_file()
    overrides = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
    assert any(o.startswith("storage.root=s3://") for o in overrides)
    assert any(o.startswith("tracking.mlflow_uri=http://") for o in overrides)
    assert manifest["spec"]["shutdownAfterJobFinishes"] is True
    assert "working_dir" in yaml.safe_load(manifest["spec"]["runtimeEnvYAML"])
    _check_head_and_gpu_workers(manifest["spec"]["rayClusterSpec"])


def test_autoscaler_yaml_passes_rays_schema_and_has_gpu_workers():
    config = _load(ROOT / "cluster" / "autoscaler" / "aws.yaml")
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    assert config["provider"]["type"] == "aws"
    types = config["available_node_types"]
    assert config["head_node_type"] in types and types[config["head_node_type"]]["resources"] == {"CPU": 0}
    workers = [t for name, t in types.items() if name != config["head_node_type"]]
    assert workers and all(t["node_config"]["InstanceType"].startswith(("g", "p")) for t in workers)
    assert any("pip install" in c and "corrvos" in c for c in config["setup_commands"])
