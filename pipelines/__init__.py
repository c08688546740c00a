"""Orchestration: stage functions, the DAG, Ray Train/Tune wiring, MLflow runs, the CLI."""
