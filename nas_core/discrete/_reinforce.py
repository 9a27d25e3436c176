"""REINFORCE (Zoph & Le, 2017; ENAS's controller): an LSTM policy emits the cell's decisions one by one.

Torch is imported here lazily, when the strategy is built: the orchestrator imports torch only when the
search really uses this strategy, and then only this small policy on the CPU, never a network to train.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from nas_core.discrete._base import Genotype, SearchSpace, Strategy


def _policy_class() -> Any:
    import torch
    from torch import nn

    class LSTMPolicy(nn.Module):
        """One LSTM cell stepped over the decisions; each decision has its own embedding and softmax head."""

        def __init__(self, decisions: list[int], hidden: int):
            super().__init__()
            self.decisions = decisions
            self.start = nn.Parameter(torch.zeros(1, hidden))
            self.lstm = nn.LSTMCell(hidden, hidden)
            self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in decisions)
            self.embeddings = nn.ModuleList(nn.Embedding(n, hidden) for n in decisions)
            for p in self.parameters():
                nn.init.uniform_(p, -0.1, 0.1)

        def forward(self, choices: list[int] | None = None, generator: Any = None) -> tuple[list[int], Any, Any]:
            """Sample choices (None) or score given ones; return them with summed log-prob and entropy."""
            x, state = self.start, None
            taken, log_prob, entropy = [], x.new_zeros(()), x.new_zeros(())
            for i, _ in enumerate(self.decisions):
                state = self.lstm(x, state)
                logits = self.heads[i](state[0])[0]
                logp = torch.log_softmax(logits, dim=-1)
                if choices is None:
                    c = int(torch.multinomial(logp.exp(), 1, generator=generator))
                else:
                    c = int(choices[i])
                taken.append(c)
                log_prob = log_prob + logp[c]
                entropy = entropy - (logp.exp() * logp).sum()
                x = self.embeddings[i](torch.tensor([c]))
            return taken, log_prob, entropy

    return LSTMPolicy


class Reinforce(Strategy):
    """Policy gradient with a moving-average reward baseline and an entropy bonus.

    Each `tell` takes one Adam step on -(reward - baseline) * log p(choices) - entropy_weight * entropy,
    re-scoring the told choices under the current policy so results may arrive in any order.
    The learning rate is higher than ENAS's 3.5e-4 because a search here trains tens to hundreds of
    candidates, not tens of thousands.
    """

    name = "reinforce"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        lr: float = 5e-3,
        baseline_decay: float = 0.99,
        entropy_weight: float = 1e-4,
        hidden: int = 32,
    ):
        super().__init__(space, seed)
        import torch

        if not 0 <= baseline_decay < 1:
            raise ValueError(f"baseline_decay: in [0, 1) (got {baseline_decay})")
        self._torch = torch
        self.generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.policy = _policy_class()(space.decisions(), hidden)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=lr)
        self.baseline_decay = baseline_decay
        self.entropy_weight = entropy_weight
        self.baseline: float | None = None

    @contextmanager
    def _one_thread(self) -> Iterator[None]:
        # A policy this small runs 30x slower on several intra-op threads when the cores are busy with
        # trials; restore the setting so a trial run inline in this process keeps its threads.
        torch = self._torch
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def _ask(self) -> Genotype:
        with self._one_thread(), self._torch.no_grad():
            choices, _, _ = self.policy(generator=self.generator)
        return self.space.decode(choices)

    def _tell(self, genotype: Genotype, value: float | None) -> None:
        if value is None:
            return  # no reward to learn from; ENAS likewise skips invalid samples
        # The first reward starts the baseline so the first step does not push blindly on an arbitrary 0.
        self.baseline = value if self.baseline is None else (
            self.baseline_decay * self.baseline + (1 - self.baseline_decay) * value
        )
        with self._one_thread():
            _, log_prob, entropy = self.policy(self.space.encode(genotype))
            loss = -(value - self.baseline) * log_prob - self.entropy_weight * entropy
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()

    def probabilities(self) -> list[list[float]]:
        """Per-decision choice probabilities along the greedy path (for inspection and tests)."""
        torch = self._torch
        probs, x, state = [], self.policy.start, None
        with self._one_thread(), torch.no_grad():
            for i, _ in enumerate(self.policy.decisions):
                state = self.policy.lstm(x, state)
                p = torch.softmax(self.policy.heads[i](state[0])[0], dim=-1)
                probs.append(p.tolist())
                x = self.policy.embeddings[i](torch.tensor([int(p.argmax())]))
        return probs
