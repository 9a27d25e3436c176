"""Batch normalisation with statistics over the whole global batch, on any engine and on the CPU
(torch's own SyncBatchNorm needs a GPU). With it, N ranks on shards compute what 1 process computes on the
full batch."""
from __future__ import annotations

import torch
from torch import nn

from nas_core.distributed.engine import Engine


class SyncBatchNorm(nn.BatchNorm2d):
    def __init__(self, *args, engine: Engine, **kwargs):
        super().__init__(*args, **kwargs)
        self.engine = engine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.engine.world_size == 1:
            return super().forward(x)
        c = x.shape[1]
        local = torch.cat([x.sum(dim=(0, 2, 3)), (x * x).sum(dim=(0, 2, 3)),
                           x.new_full((1,), x.numel() / c)])
        # Differentiable sum over ranks: gradients flow back through the shared statistics.
        total = self.engine.allreduce_sum(local)
        count = total[-1]
        mean = total[:c] / count
        var = total[c:2 * c] / count - mean * mean
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 0.1
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * count / max(count - 1, 1), alpha=m)
                self.num_batches_tracked += 1
        y = (x - mean[None, :, None, None]) * torch.rsqrt(var[None, :, None, None] + self.eps)
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y


def convert_sync_batchnorm(module: nn.Module, engine: Engine) -> nn.Module:
    """Replace every BatchNorm2d in `module` by a SyncBatchNorm sharing its parameters and buffers."""
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, SyncBatchNorm):
        sync = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                             module.track_running_stats, engine=engine)
        if module.affine:
            sync.weight, sync.bias = module.weight, module.bias
        if module.track_running_stats:
            sync.running_mean, sync.running_var = module.running_mean, module.running_var
            sync.num_batches_tracked = module.num_batches_tracked
        return sync
    for name, child in module.named_children():
        setattr(module, name, convert_sync_batchnorm(child, engine))
    return module
