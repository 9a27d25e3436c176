"""Search spaces as data: the operation registry, cell DAGs, supernets, discrete networks and genotypes.

Public names are loaded on first use, so that importing the experiment schema does not import torch.
"""
from __future__ import annotations

from nas_core._lazy import lazy_exports

_EXPORTS = {
    "SpaceConfig": "config", "CellSpaceConfig": "config", "DARTS_OPS": "config",
    "OPS": "ops", "OP_DEFAULTS": "ops", "register_op": "ops", "allow_op_module": "ops", "register_user_ops": "ops",
    "UNET_DOWN_OPS": "ops", "UNET_UP_OPS": "ops",
    "CellGraph": "cell", "SpaceError": "cell",
    "Genotype": "genotypes", "CellGenotype": "genotypes", "parse_darts_genotype": "genotypes",
    "format_darts_genotype": "genotypes", "genotype_to_graph": "genotypes", "load_genotype": "genotypes",
    "decode": "decoding", "decode_cell": "decoding",
    "sample_genotype": "sample", "mutate_genotype": "sample",
    "validate_space": "validate",
    "Supernet": "supernet", "build_supernet": "supernet",
    "Network": "network", "build_network": "network", "inherit_weights": "network", "count_parameters": "network",
    "count_flops": "network",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
