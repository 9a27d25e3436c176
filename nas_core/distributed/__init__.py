"""Data-parallel continuous search: one engine interface over torch.distributed and Horovod."""
from nas_core.distributed.engine import Engine, create_engine
from nas_core.distributed.env import Placement, device_for, placement
from nas_core.distributed.sync_bn import SyncBatchNorm, convert_sync_batchnorm

__all__ = ["Engine", "Placement", "SyncBatchNorm", "convert_sync_batchnorm", "create_engine", "device_for", "placement"]
