"""Stage functions: each maps its config section and input URIs to output URIs (DESIGN.md).

They know nothing of the DAG, caching or the parent run; `pipelines.dag.engine` gives each one its
output folder and its own MLflow run.
"""
