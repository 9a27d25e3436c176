"""Torch datasets over a prepared directory or the generator, with normalisation, D4 augmentation and splits."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from nas_core.data.config import DataConfig
from nas_core.data.readers import DataError
from nas_core.data.splits import split_by_scene


class PreparedTiles(Dataset):
    """The tiles of a dataset made by `nasforge data prepare`; refuses a directory whose manifest is not complete.

    Reads the memory-mapped tile store (nas_core.data.tilestore) when the directory has a fresh one, the PNGs
    otherwise (`use_store=False`: always the PNGs); both give the same arrays.
    """

    def __init__(self, path: str | Path, verify: bool = False, use_store: bool = True):
        from nas_core.data.manifest import load_manifest
        from nas_core.data.readers import read_array
        from nas_core.data.tilestore import open_store

        self._read = read_array
        self.root = Path(path)
        self.manifest = load_manifest(self.root, verify=verify)
        self.tiles = self.manifest["tiles"]
        self.scenes = [t["scene"] for t in self.tiles]
        self.num_classes = int(self.manifest["num_classes"])
        self.in_channels = int(self.manifest["image_stats"]["channels"])
        self.mean = self.manifest["image_stats"]["mean"]
        self.std = self.manifest["image_stats"]["std"]
        self.store = open_store(self.root, self.tiles) if use_store else None

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, i: int):
        t = self.tiles[i]
        img = self.store.image(i) if self.store is not None else self._read(self.root / t["image"])
        if img.ndim == 2:
            img = img[:, :, None]
        scale = float(np.iinfo(img.dtype).max) if np.issubdtype(img.dtype, np.integer) else 1.0
        image = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32) / scale)
        mask = self.store.mask(i) if self.store is not None else self._read(self.root / t["mask"])
        mask = torch.from_numpy(mask.astype(np.int64))
        return image, mask


class _View(Dataset):
    """A subset of a dataset's items, normalised and optionally augmented; knows its scenes."""

    def __init__(self, base, indices, mean, std, augment: bool, seed: int):
        self.base, self.indices = base, list(indices)
        self.scenes = [base.scenes[i] for i in self.indices]
        self.num_classes, self.in_channels = base.num_classes, base.in_channels
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32)[:, None, None]
        self.augment, self.seed = augment, seed
        # In shared memory: a persistent loader worker holds its own copy of this dataset and still sees set_epoch.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(epoch)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        image, mask = self.base[self.indices[i]]
        if self.mean is not None:
            image = (image - self.mean) / self.std
        if self.augment:
            # The transform depends on (seed, epoch, item) only: the same in any worker process and on resume.
            k = int(np.random.default_rng([self.seed, self.epoch, self.indices[i]]).integers(8))
            if k >= 4:
                image, mask = image.flip(-1), mask.flip(-1)
            if k % 4:
                image, mask = torch.rot90(image, k % 4, (-2, -1)), torch.rot90(mask, k % 4, (-2, -1))
            image, mask = image.contiguous(), mask.contiguous()
        return image, mask


def _synthetic_stats(base, n: int = 16) -> tuple[list[float], list[float]]:
    imgs = torch.stack([base[i][0] for i in range(min(n, len(base)))])
    return imgs.mean((0, 2, 3)).tolist(), imgs.std((0, 2, 3)).clamp_min(1e-3).tolist()


def build_datasets(data_cfg: DataConfig, seed: int) -> dict[str, Dataset]:
    """{"train_w", "train_a", "val", "test"}: splits by scene, seeded; training halves are augmented if configured."""
    if data_cfg.source == "synthetic":
        from nas_core.data.synthetic import HelicopterTiles

        base = HelicopterTiles(data_cfg.num_tiles, data_cfg.tile_size, seed)
        mean, std = _synthetic_stats(base)
    else:
        if not data_cfg.path:
            raise ValueError("data.path: a prepared dataset needs its directory (made by `nasforge data prepare`)")
        root = Path(data_cfg.path).expanduser().resolve()
        try:
            base = PreparedTiles(root)
        except DataError as exc:  # the field and the absolute path it names, whatever the working directory
            raise DataError(f"data.path: {exc}") from None
        mean, std = base.mean, [max(s, 1e-3) for s in base.std]
    if not data_cfg.normalize:
        mean = std = None
    parts = split_by_scene(base.scenes, seed, data_cfg.val_fraction, data_cfg.test_fraction, data_cfg.arch_fraction)
    return {name: _View(base, idx, mean, std, augment=data_cfg.augment and name.startswith("train"), seed=seed)
            for name, idx in parts.items()}
