"""Where to search first (issue 18): rank the named blocks of a trained hand-designed network by how much the
validation IoU depends on them and how much room they leave (nas_core.sensitivity.rank says how)."""
from nas_core.sensitivity.analyse import named_blocks, sensitivity
from nas_core.sensitivity.finetune import SensitivityError

__all__ = ["SensitivityError", "named_blocks", "sensitivity"]
