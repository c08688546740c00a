"""How to get a Ray cluster: local start, KubeRay manifests, job submission (see cluster/README.md)."""
