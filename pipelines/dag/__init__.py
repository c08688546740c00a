"""The workflow DAG: stage order, fingerprinted outputs, success records, reuse, rerun, status."""
