"""Exact resume: a run killed and resumed from a checkpoint ends with the weights of an
uninterrupted run (README "Crash safety and exact resume").

detectron2 restores the model, optimizer, scheduler and iteration, but a resumed run starts a
fresh data stream and keeps whatever random state the new process has, so it differs from the
uninterrupted run from the next step on. Three pieces close the gap without forking detectron2:

* the random state of the training step (python ``random``, numpy, torch CPU and CUDA) is saved
  in every checkpoint (``rng_state``) and restored after resuming;
* the data stream is *replayed*: the resumed process rebuilds the loader with the same seeds and
  draws the batches the first run consumed before the checkpoint (mapping work only, no model),
  so the sampler position, the aspect-ratio buckets and every worker's random stream are where
  the uninterrupted run had them;
* both only hold if the data pipeline's randomness is separate from the training step's, as it
  is with loader workers (each worker process has its own streams). With
  ``DATALOADER.NUM_WORKERS = 0`` the mapper runs in the training process, so
  :class:`IsolatedRNGMapper` gives it streams of its own, like a worker's.

Evaluation during training (``TEST.EVAL_PERIOD``) runs between steps and draws random numbers
(its loader's seed); :func:`preserved_rng` keeps it from shifting the training's streams.
"""

import contextlib
import logging
import random
from typing import Any, Callable, Dict, Iterator

import numpy as np
import torch
from detectron2.utils.env import seed_all_rng

logger = logging.getLogger(__name__)

__all__ = ["rng_state", "set_rng_state", "preserved_rng", "IsolatedRNGMapper", "replay_batches"]


def rng_state(cuda: bool = True) -> Dict[str, Any]:
    """The process's random state: python, numpy, torch CPU (and CUDA when initialised).

    Only tensors, numbers and strings, so that a checkpoint holding it still loads with
    ``torch.load(weights_only=True)`` (numpy arrays would not).
    """
    version, words, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "words": torch.tensor(words, dtype=torch.int64),
                   "gauss": gauss},
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }  # fmt: skip
    if cuda and torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restores a state of :func:`rng_state` (a CUDA part is skipped without CUDA)."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(w) for w in py["words"].tolist()), py["gauss"]))
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["name"], keys, npy["pos"], npy["has_gauss"], npy["cached"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def preserved_rng():
    """Runs the block and puts the random state back as it was before it."""
    state = rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


class IsolatedRNGMapper:
    """Calls ``mapper`` with python/numpy/torch random streams of its own (seeded with ``seed``
    on first use), leaving the caller's streams untouched: what a loader worker process gets.

    Args:
        mapper: the dataset mapper (callable on one dataset dict).
        seed: seed of the mapper's streams.
    """

    def __init__(self, mapper: Callable, seed: int):
        self.mapper = mapper
        self.seed = int(seed)
        self._state = None

    def __call__(self, dataset_dict: Dict) -> Any:
        outer = rng_state(cuda=False)
        if self._state is None:
            seed_all_rng(self.seed)
        else:
            set_rng_state(self._state)
        try:
            return self.mapper(dataset_dict)
        finally:
            self._state = rng_state(cuda=False)
            set_rng_state(outer)

    def __getattr__(self, name: str) -> Any:
        # Attributes of the wrapped mapper (e.g. AmodalDatasetMapper.num_repaired) stay reachable.
        if name == "mapper":  # not set yet (unpickling in a worker)
            raise AttributeError(name)
        return getattr(self.mapper, name)

    def __repr__(self) -> str:
        return f"IsolatedRNGMapper({self.mapper!r}, seed={self.seed})"


def replay_batches(data_loader, num_batches: int) -> Iterator:
    """A fresh iterator over ``data_loader`` advanced by ``num_batches`` batches."""
    iterator = iter(data_loader)
    if num_batches:
        logger.info(f"Exact resume: replaying the first {num_batches} batches of the data stream")
    for _ in range(num_batches):
        next(iterator)
    return iterator
