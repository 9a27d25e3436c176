"""A few data-parallel training steps of a tiny conv+BN net with an alpha-like parameter; rank 0 saves the
final state. Run as 1 process (engine none) or under torchrun / horovodrun (tests/distributed)."""
import sys

import torch
from torch import nn

from nas_core.distributed import convert_sync_batchnorm, create_engine

import os
import signal
import time
from pathlib import Path

engine_name, out = sys.argv[1], sys.argv[2]
# Optional failure injection: "kill:RANK:STEP" (SIGKILL itself), "stall:RANK:STEP" (hang), "backstall:RANK:STEP"
# (hang in the backward pass, where the gradient reaches SyncBatchNorm, before its all-reduce), or "scale:RANK:FACTOR"
# (that rank sends FACTOR times its gradients, the mutant of _mutant.py: the equality comparison must then fail).
fault = sys.argv[3].split(":") if len(sys.argv) > 3 else None
if fault and fault[0] == "scale":
    from _mutant import scale_one_rank

    scale_one_rank(int(fault[1]), float(fault[2]))
    fault = None
torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
timeout = float(os.environ.get("TOY_TIMEOUT_S", "30"))
engine = create_engine(engine_name, timeout_s=timeout)
engine.watch(Path(out).parent / "ranks", timeout)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.b = nn.Conv2d(3, 4, 1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.alpha = nn.Parameter(torch.zeros(2))
        self.head = nn.Conv2d(4, 2, 1)

    stall_backward = False

    def forward(self, x):
        w = torch.softmax(self.alpha, 0)
        h = self.bn(w[0] * self.a(x) + w[1] * self.b(x))
        if self.stall_backward:
            h.register_hook(lambda grad: time.sleep(3600))
        return self.head(torch.relu(h))


net = convert_sync_batchnorm(Net(), engine)
params = list(net.parameters())
engine.broadcast_(params + list(net.buffers()))
opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
gen = torch.Generator().manual_seed(1)
for step in range(4):
    if fault and engine.rank == int(fault[1]) and step == int(fault[2]):
        if fault[0] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if fault[0] == "backstall":
            Net.stall_backward = True
        else:
            time.sleep(3600)
    x = torch.randn(8, 3, 8, 8, generator=gen)
    y = torch.randint(0, 2, (8, 8, 8), generator=gen)
    loss = nn.functional.cross_entropy(net(engine.shard(x)), engine.shard(y))
    opt.zero_grad()
    loss.backward()
    engine.average_gradients(params)
    opt.step()
    mean_loss = engine.mean(loss.item())
    engine.step_done(step)
if engine.is_main:
    torch.save({"state": net.state_dict(), "loss": mean_loss, "world": engine.world_size}, out)
engine.shutdown()
