"""Splits by scene, the sharded sampler, augmentation and build_datasets."""
import os

import pytest
import torch
import torch.distributed as dist

from nas_core.data import DataConfig, ShardSampler, build_datasets, make_loader, split_by_scene
from nas_core.data.synthetic import HelicopterTiles


def test_split_by_scene_never_shares_a_scene():
    scenes = [f"s{i // 5}" for i in range(100)]  # 20 scenes of 5 tiles
    parts = split_by_scene(scenes, seed=7)
    owners = {}
    for name, idx in parts.items():
        for i in idx:
            owners.setdefault(scenes[i], set()).add(name)
    assert all(len(v) == 1 for v in owners.values())
    assert sorted(i for idx in parts.values() for i in idx) == list(range(100))
    assert all(parts[k] for k in parts)
    assert parts == split_by_scene(scenes, seed=7)
    assert parts != split_by_scene(scenes, seed=8)


def test_too_few_scenes_is_a_clear_error():
    with pytest.raises(ValueError, match="3 scene.*need at least 4"):
        split_by_scene(["a", "a", "b", "c"], seed=0)


def test_build_datasets_synthetic():
    ds = build_datasets(DataConfig(num_tiles=40, tile_size=32), seed=0)
    assert set(ds) == {"train_w", "train_a", "val", "test"}
    assert sum(len(d) for d in ds.values()) == 40
    seen = [s for d in ds.values() for s in d.scenes]
    assert len(seen) == len(set(seen))
    x, m = ds["val"][0]
    assert x.shape == (3, 32, 32) and m.shape == (32, 32)
    # normalised: roughly zero mean, unit spread over a split
    xs = torch.stack([ds["train_w"][i][0] for i in range(len(ds["train_w"]))])
    assert abs(float(xs.mean())) < 0.5 and 0.5 < float(xs.std()) < 2


def test_augmentation_is_one_d4_transform_applied_to_both():
    ds = build_datasets(DataConfig(num_tiles=20, tile_size=32, normalize=False), seed=1)
    view = ds["train_w"]
    base = HelicopterTiles(20, 32, seed=1)
    changed = 0
    for epoch in (0, 1):
        view.set_epoch(epoch)
        for i in range(len(view)):
            x, m = view[i]
            bx, bm = base[view.indices[i]]
            candidates = []
            for flip in (False, True):
                for k in range(4):
                    tx, tm = (bx.flip(-1), bm.flip(-1)) if flip else (bx, bm)
                    candidates.append((torch.rot90(tx, k, (-2, -1)), torch.rot90(tm, k, (-2, -1))))
            hits = [j for j, (cx, cm) in enumerate(candidates) if torch.equal(cx, x) and torch.equal(cm, m)]
            assert hits, "image and mask must get the same flip/rotation"
            changed += hits[0] != 0
            assert torch.equal(view[i][0], x)  # same (seed, epoch, item): same transform
    assert changed > 0
    assert not ds["test"].augment


def test_shard_sampler_partitions_each_epoch():
    data = list(range(10))
    shards = [list(ShardSampler(data, shuffle=True, seed=3, rank=r, world_size=3)) for r in range(3)]
    assert all(len(s) == 4 for s in shards)  # padded to 12 so ranks step in lockstep
    flat = [i for s in shards for i in s]
    assert set(flat) == set(data)
    s0 = ShardSampler(data, shuffle=True, seed=3, rank=0, world_size=3)
    first = list(s0)
    s0.set_epoch(1)
    assert list(s0) != first


def test_make_loader_distributed_needs_a_process_group():
    ds = HelicopterTiles(4, 16)
    with pytest.raises(RuntimeError, match="torch.distributed"):
        make_loader(ds, 2, True, 0, distributed=True)
    loader = make_loader(ds, 2, True, 0, distributed=True, rank=1, world_size=2)
    assert len(loader.sampler) == 2


def test_make_loader_reads_rank_from_torch_distributed(tmp_path):
    # A real (single-process) gloo group: the sampler takes rank and world size from it.
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        loader = make_loader(HelicopterTiles(5, 16), 2, True, 0, distributed=True)
        assert (loader.sampler.rank, loader.sampler.world_size) == (0, 1)
        assert len(list(loader)) == 3
    finally:
        dist.destroy_process_group()


def test_worker_processes_give_the_same_batches():
    ds = build_datasets(DataConfig(num_tiles=24, tile_size=16), seed=0)["train_w"]
    a = [b[1] for b in make_loader(ds, 4, True, seed=5, workers=0)]
    b = [b[1] for b in make_loader(ds, 4, True, seed=5, workers=2)]
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and len(a) == len(b)


_RANK_SCRIPT = """
import json, sys
import torch, torch.distributed as dist
from nas_core.data import DataConfig, build_datasets, make_loader
rank, store, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
torch.set_num_threads(1)
dist.init_process_group("gloo", init_method="file://" + store, rank=rank, world_size=2)
ds = build_datasets(DataConfig(num_tiles=40, tile_size=16), seed=0)["train_w"]
loader = make_loader(ds, 3, shuffle=True, seed=0, distributed=True)
seen = {}
for epoch in (0, 1):
    loader.sampler.set_epoch(epoch)
    seen[epoch] = list(loader.sampler)
    steps = torch.tensor([len(loader)])
    dist.all_reduce(steps)  # both ranks must take the same number of steps, or all-reduce would hang
    seen["steps"] = int(steps)
json.dump({"seen": seen, "n": len(ds)}, open(out, "w"))
dist.destroy_process_group()
"""


def test_sampler_under_two_real_ranks(tmp_path):
    import json
    import subprocess
    import sys

    script = tmp_path / "rank.py"
    script.write_text(_RANK_SCRIPT)
    procs = [subprocess.Popen([sys.executable, str(script), str(r), str(tmp_path / "store"), str(tmp_path / f"{r}.json")])
             for r in range(2)]
    try:
        assert [p.wait(120) for p in procs] == [0, 0]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    res = [json.loads((tmp_path / f"{r}.json").read_text()) for r in range(2)]
    n = res[0]["n"]
    for epoch in ("0", "1"):
        a, b = res[0]["seen"][epoch], res[1]["seen"][epoch]
        assert len(a) == len(b) and set(a) | set(b) == set(range(n))
        assert len(set(a) & set(b)) <= (len(a) + len(b)) - n  # only the padding repeats
    assert res[0]["seen"]["0"] != res[0]["seen"]["1"]
