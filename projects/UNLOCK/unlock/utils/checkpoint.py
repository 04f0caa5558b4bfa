"""Loading trained weights with clear errors.

detectron2's ``DetectionCheckpointer`` silently initialises from scratch when ``MODEL.WEIGHTS`` is
empty, raises a bare ``AssertionError`` for a missing file, and *skips with a warning* every
parameter whose shape differs from the model's. For a trained UNLOCK model the last case almost
always means that the config's class count differs from the one the checkpoint was trained with,
and the silent skip leaves a randomly initialised classifier behind. ``UnlockCheckpointer`` turns
each of these into a typed exception whose message names the file, the parameter, the shapes and
the config key to fix.

Fine-tuning (``allow_shape_mismatch=True``, the trainer) keeps detectron2's skip but logs one
WARNING summary of every parameter that kept its initialisation. Saving is atomic (temporary file
in the same folder + ``os.replace``, as ``unlock.utils.file_io``), so a kill during a save never
leaves a truncated ``model_*.pth`` or ``last_checkpoint`` under its final name.
"""

import logging
import os
import re
from typing import IO, Any, Dict, List, Optional, Sequence, Tuple, cast

import torch
from detectron2.checkpoint import DetectionCheckpointer

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointError",
    "WeightsNotFoundError",
    "WeightsUnreadableError",
    "CheckpointShapeMismatchError",
    "UnlockCheckpointer",
    "load_weights",
    "describe_shape_mismatch",
]


class CheckpointError(RuntimeError):
    """Base class of every weights-loading error raised by this module."""


class WeightsNotFoundError(CheckpointError, FileNotFoundError):
    """``MODEL.WEIGHTS`` is empty or names a file that does not exist."""


class WeightsUnreadableError(CheckpointError):
    """The weights file exists but cannot be read or is not a checkpoint."""


class CheckpointShapeMismatchError(CheckpointError, ValueError):
    """A checkpoint parameter has a different shape from the model's (usually a class count)."""


# (pattern on the parameter name, config key, how the class count is read from dim 0, other key
# that changes the shape). The amodal head's attribute name is owned by unlock.modeling; any
# "amodal...predictor" matches.
_CLASS_COUNT_PARAMS: Sequence[Tuple[str, str, str, str]] = (
    (r"(^|\.)box_predictor\.cls_score\.", "MODEL.ROI_HEADS.NUM_CLASSES", "minus_one", ""),
    (
        r"(^|\.)box_predictor\.bbox_pred\.",
        "MODEL.ROI_HEADS.NUM_CLASSES",
        "div_four",
        "MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG",
    ),
    (
        r"amodal[^.]*\.predictor\.",
        "MODEL.ROI_HEADS.NUM_CLASSES",
        "identity",
        "MODEL.ROI_AMODAL_MASK_HEAD.CLS_AGNOSTIC_MASK",
    ),
    (
        r"(^|\.)mask_head\.predictor\.",
        "MODEL.ROI_HEADS.NUM_CLASSES",
        "identity",
        "MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK",
    ),
    (r"(^|\.)sem_seg_head\.predictor\.", "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "identity", ""),
)


def _class_count(dim0: int, rule: str) -> int:
    if rule == "minus_one":  # background logit
        return dim0 - 1
    if rule == "div_four":  # class-specific box regression
        return dim0 // 4
    return dim0


def _is_class_count_param(name: str) -> bool:
    return any(re.search(entry[0], name) for entry in _CLASS_COUNT_PARAMS)


def describe_shape_mismatch(
    name: str, shape_checkpoint: Tuple[int, ...], shape_model: Tuple[int, ...]
) -> str:
    """One sentence explaining a shape mismatch and which config key to change.

    Args:
        name: parameter name in the model's ``state_dict``.
        shape_checkpoint: its shape in the checkpoint.
        shape_model: its shape in the model built from the config.

    Returns:
        The explanation; for class-count parameters it names the config key and the value the
        checkpoint implies.
    """
    base = (
        f"parameter '{name}' has shape {tuple(shape_checkpoint)} in the checkpoint but "
        f"{tuple(shape_model)} in the model"
    )
    for pattern, key, rule, other_key in _CLASS_COUNT_PARAMS:
        if re.search(pattern, name) and len(shape_checkpoint) and len(shape_model):
            ckpt_n = _class_count(shape_checkpoint[0], rule)
            model_n = _class_count(shape_model[0], rule)
            if ckpt_n != model_n:
                also = f", or check {other_key}" if other_key else ""
                return (
                    f"{base}: the checkpoint was trained with {ckpt_n} classes, the config "
                    f"builds {model_n}; set {key} to {ckpt_n} (--opts {key} {ckpt_n}{also})"
                )
            break
    return f"{base}: the config does not describe the architecture the checkpoint was saved from"


class UnlockCheckpointer(DetectionCheckpointer):
    """``DetectionCheckpointer`` that raises instead of silently skipping mismatched weights.

    Args:
        model: the model to load into.
        save_dir: as in ``DetectionCheckpointer``.
        allow_shape_mismatch: keep detectron2's skip-with-warning behaviour (for fine-tuning into
            a different class space on purpose).
        allow_empty: an empty path means "train from scratch", as in detectron2 (the trainer);
            otherwise it is an error (evaluation, pseudo-labelling, the demo).
        checkpointables: as in ``DetectionCheckpointer``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        save_dir: str = "",
        *,
        allow_shape_mismatch: bool = False,
        allow_empty: bool = False,
        **checkpointables: Any,
    ):
        super().__init__(model, save_dir, **checkpointables)
        self.allow_shape_mismatch = allow_shape_mismatch
        self.allow_empty = allow_empty
        self._loading: Optional[str] = None

    def load(self, path: str, *args, **kwargs) -> Dict[str, Any]:
        """Loads ``path``; raises :class:`CheckpointError` subclasses on any problem.

        Args:
            path: local file or URL understood by detectron2's ``PathManager``.

        Returns:
            The extra checkpoint data, as ``DetectionCheckpointer.load``.
        """
        if not path and self.allow_empty:
            return super().load(path, *args, **kwargs)  # logs "from scratch"
        if not path:
            raise WeightsNotFoundError(
                "no weights given: MODEL.WEIGHTS is empty, so the model would keep its random "
                "initialisation; set MODEL.WEIGHTS to a trained checkpoint (.pth or .pkl)"
            )
        if "://" not in path:
            if not os.path.exists(path):
                raise WeightsNotFoundError(f"weights file not found: {path}")
            if os.path.isdir(path):
                raise WeightsUnreadableError(f"{path}: is a folder, expected a weights file")
            if not os.access(path, os.R_OK):
                raise WeightsUnreadableError(f"{path}: weights file is not readable (permissions)")
        self._loading = path
        try:
            return super().load(path, *args, **kwargs)
        except CheckpointError:
            raise
        except (OSError, AssertionError) as e:
            raise WeightsNotFoundError(f"{path}: cannot open weights ({e})") from e
        finally:
            self._loading = None

    def _load_file(self, filename: str) -> Dict[str, Any]:
        try:
            loaded = super()._load_file(filename)
        except Exception as e:  # torch.load / pickle raise many unrelated types on garbage
            raise WeightsUnreadableError(
                f"{filename}: not a readable PyTorch/detectron2 checkpoint ({_load_failure(e)})"
            ) from e
        if not isinstance(loaded, dict) or not isinstance(loaded.get("model"), dict):
            raise WeightsUnreadableError(
                f"{filename}: checkpoint holds no state dict (got {type(loaded).__name__})"
            )
        return loaded

    def _load_model(self, checkpoint: Any):
        incompatible = super()._load_model(checkpoint)
        if self.allow_shape_mismatch:
            _warn_not_loaded(self._loading or "checkpoint", incompatible)
            return incompatible
        missing_heads = [k for k in _missing_keys(incompatible) if _is_class_count_param(k)]
        if missing_heads and not incompatible.incorrect_shapes:
            raise CheckpointShapeMismatchError(
                f"{self._loading or 'checkpoint'}: has no parameter '{missing_heads[0]}' (and "
                f"{len(missing_heads) - 1} more head parameters): it was not saved from a model "
                "with this config's heads, which would keep their random initialisation"
            )
        if incompatible.incorrect_shapes:
            mismatches = _class_count_first(incompatible.incorrect_shapes)
            lines: List[str] = [describe_shape_mismatch(*m) for m in mismatches]
            # The first class-count parameter is the most useful one to show on a single line.
            raise CheckpointShapeMismatchError(
                f"{self._loading or 'checkpoint'}: {lines[0]}"
                + (f" (and {len(lines) - 1} more mismatched parameters)" if len(lines) > 1 else "")
            )
        return incompatible

    def save(self, name: str, **kwargs: Any) -> None:
        """As ``Checkpointer.save``, but written to a temporary file first and renamed."""
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info(f"Saving checkpoint to {save_file}")
        _atomic_save(save_file, lambda f: torch.save(data, cast(IO[bytes], f)))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        path = os.path.join(self.save_dir, "last_checkpoint")
        _atomic_save(path, lambda f: f.write(last_filename_basename.encode()))


def _atomic_save(path: str, write_fn) -> None:
    """Writes ``path`` through a ``.tmp-*`` file in its folder (local paths; others as is)."""
    if "://" in path:  # remote storage: detectron2's PathManager, no rename available
        from detectron2.utils.file_io import PathManager

        with PathManager.open(path, "wb") as f:
            write_fn(f)
        return
    from .file_io import atomic_write_with

    atomic_write_with(path, write_fn)


def _load_failure(exc: BaseException) -> str:
    """A short reason for a failed ``torch.load``, without torch's advice to load the file with
    ``weights_only=False`` (that runs arbitrary code from a file that is already suspicious)."""
    text = str(exc)
    match = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\s*\n|$)", text, re.S)
    if match:
        detail = " ".join(match.group(1).split())
        return f"not a file written by torch.save, or damaged ({detail})"
    first = text.splitlines()[0] if text else "no detail"
    if "weights_only" in first:
        return "not a file written by torch.save, or damaged"
    return f"{type(exc).__name__}: {first}"


def _class_count_first(mismatches):
    """Shape mismatches with the class-count parameters first: they carry the config key to fix."""
    return sorted(mismatches, key=lambda m: not _is_class_count_param(m[0]))


def _missing_keys(incompatible) -> List[str]:
    """Model parameters absent from the checkpoint. fvcore drops the shape-mismatched entries
    before loading and reports them as missing too; they are left out here."""
    skipped = {name for name, _, _ in incompatible.incorrect_shapes}
    return [k for k in incompatible.missing_keys if k not in skipped]


def _warn_not_loaded(path: str, incompatible) -> None:
    """One WARNING listing what fine-tuning did not load (detectron2 logs each skip at WARNING
    too, scattered between other lines; this is the summary a user can act on)."""
    parts = []
    missing = _missing_keys(incompatible)
    if incompatible.incorrect_shapes:
        ordered = _class_count_first(incompatible.incorrect_shapes)
        first = describe_shape_mismatch(*ordered[0])
        parts.append(f"{len(ordered)} parameters with another shape (first: {first})")
    if missing:
        shown = ", ".join(missing[:3]) + ("" if len(missing) <= 3 else ", ...")
        parts.append(f"{len(missing)} parameters missing from the checkpoint ({shown})")
    if parts:
        logger.warning(f"{path}: NOT LOADED, kept their initialisation: " + "; ".join(parts))
    if incompatible.unexpected_keys:
        logger.warning(
            f"{path}: {len(incompatible.unexpected_keys)} checkpoint entries are not used by the "
            f"model (e.g. {incompatible.unexpected_keys[0]})"
        )


def load_weights(
    model: torch.nn.Module, weights: str, *, allow_shape_mismatch: bool = False
) -> Dict[str, Any]:
    """Loads ``weights`` into ``model`` with the checks of :class:`UnlockCheckpointer`.

    Args:
        model: a built model (e.g. ``detectron2.modeling.build_model(cfg)``).
        weights: checkpoint path or URL (``cfg.MODEL.WEIGHTS``).
        allow_shape_mismatch: skip mismatched parameters with a warning instead of raising.

    Returns:
        Extra data stored in the checkpoint (e.g. ``iteration``).

    Raises:
        WeightsNotFoundError: empty ``weights`` or missing file.
        WeightsUnreadableError: the file is not a checkpoint.
        CheckpointShapeMismatchError: a parameter shape differs (message names the config key).
    """
    return UnlockCheckpointer(model, allow_shape_mismatch=allow_shape_mismatch).load(weights)
