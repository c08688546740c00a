"""Stage `ingest`: every configured source into Parquet under the stage folder; one output per dataset."""

from __future__ import annotations

from components.config import CorrvosConfig
from components.config.roles import HELD_OUT_ROLES
from components.data.config import IngestConfig
from components.data.dataset import VideoDataset
from components.data.ingest import ingest
from components.data.manifest import Manifest
from components.data.overlap import RoleDataset, check_test_apart
from components.errors import DataError
from pipelines.dag.sources import source_present
from pipelines.dataset_inputs import log_dataset_inputs
from pipelines.stages.context import StageContext


def run_ingest(config: CorrvosConfig, context: StageContext) -> dict[str, str]:
    """Ingest each source (an optional, missing folder is skipped); returns {dataset name: URI}."""
    outputs: dict[str, str] = {}
    manifests: dict[str, Manifest] = {}
    for source in config.pipeline.sources:
        if not source_present(source, config.storage.options):
            if source.optional:
                context.logger.set_tags({f"corrvos.skipped.{source.name}": f"{source.source} not found"})
                continue
            raise DataError(f"pipeline.sources[{source.name}]: {source.source} not found")
        uri = f"{context.out}/{source.name}"
        settings = IngestConfig(short_side=source.short_side, engine=config.pipeline.ingest_engine)
        manifest = ingest(source.kind, source.source, uri, settings, overwrite=True, split=source.split,
                          resolution=source.resolution, storage_options=config.storage.options,
                          progress=context.progress, select=source.select)
        counts = manifest.counts
        context.logger.log_metrics({f"{source.name}.videos": counts["videos"], f"{source.name}.frames": counts["frames"]}, 0)
        context.logger.set_tags({f"corrvos.dataset_version.{source.name}": manifest.content_hash})
        VideoDataset(uri, config.storage.options)  # reads the manifest back: a dataset the next stages can open
        outputs[source.name] = uri
        manifests[source.name] = manifest
    if not outputs:
        raise DataError("pipeline.sources: no dataset could be ingested")
    roles = [(outputs[s.name], role) for s in config.pipeline.sources if s.name in outputs for role in s.roles]
    log_dataset_inputs(context.tracking_uri, context.run_id, roles, config.storage.options)
    check_test_apart(*_by_role(config, manifests))  # before any stage can train or steer on a test video
    return outputs


def _by_role(config: CorrvosConfig, manifests: dict[str, Manifest]) -> tuple[list[RoleDataset], list[RoleDataset]]:
    """(test datasets, steering datasets) among those ingested, each with the role it plays."""
    test, steering = [], []
    for source in config.pipeline.sources:
        if source.name not in manifests:
            continue
        for role in source.roles:
            entry = RoleDataset(source.name, role, manifests[source.name])
            (test if role in HELD_OUT_ROLES else steering).append(entry)
    return test, steering
