"""Weights loading with clear errors (unlock.utils.checkpoint) on a tiny module with the
parameter names of the UNLOCK model's class-count layers."""

import logging

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from torch import nn

from unlock.utils.checkpoint import (
    CheckpointShapeMismatchError,
    UnlockCheckpointer,
    WeightsNotFoundError,
    WeightsUnreadableError,
    describe_shape_mismatch,
    load_weights,
)


def _module(**children):
    m = nn.Module()
    for name, child in children.items():
        m.add_module(name, child)
    return m


class _TinyModel(nn.Module):
    def __init__(self, things=7, sem=18, fpn=4):
        super().__init__()
        self.backbone = nn.Conv2d(3, fpn, 1)
        self.roi_heads = _module(
            box_predictor=_module(
                cls_score=nn.Linear(fpn, things + 1), bbox_pred=nn.Linear(fpn, 4 * things)
            ),
            mask_head=_module(predictor=nn.Conv2d(fpn, things, 1)),
            amodal_mask_head=_module(predictor=nn.Conv2d(fpn, things, 1)),
        )
        self.sem_seg_head = _module(predictor=nn.Conv2d(fpn, sem, 1))


def _save(model, tmp_path, name="model"):
    DetectionCheckpointer(model, str(tmp_path)).save(name)
    return str(tmp_path / f"{name}.pth")


def test_round_trip(tmp_path):
    torch.manual_seed(0)
    source = _TinyModel()
    path = _save(source, tmp_path)
    target = _TinyModel()
    load_weights(target, path)
    for (k, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items()):
        assert torch.equal(a, b), k


def test_empty_weights_is_an_error():
    with pytest.raises(WeightsNotFoundError, match="MODEL.WEIGHTS is empty"):
        load_weights(_TinyModel(), "")


def test_missing_file(tmp_path):
    path = str(tmp_path / "absent.pth")
    with pytest.raises(WeightsNotFoundError, match="absent.pth"):
        load_weights(_TinyModel(), path)
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError for generic handlers
        load_weights(_TinyModel(), path)


def test_unreadable_file(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(WeightsUnreadableError, match="garbage.pth: not a readable"):
        load_weights(_TinyModel(), str(garbage))
    with pytest.raises(WeightsUnreadableError, match="is a folder"):
        load_weights(_TinyModel(), str(tmp_path))
    tensor_only = tmp_path / "tensor.pth"
    torch.save([1, 2, 3], str(tensor_only))
    with pytest.raises(WeightsUnreadableError, match="tensor.pth: checkpoint holds no state dict"):
        load_weights(_TinyModel(), str(tensor_only))


def test_thing_class_count_mismatch_names_parameter_shapes_and_key(tmp_path):
    path = _save(_TinyModel(things=8), tmp_path)
    with pytest.raises(CheckpointShapeMismatchError) as info:
        load_weights(_TinyModel(things=7), path)
    message = str(info.value)
    assert message.startswith(path)
    assert "roi_heads.box_predictor.cls_score" in message
    assert "(9, 4) in the checkpoint but (8, 4) in the model" in message
    assert "trained with 8 classes, the config builds 7" in message
    assert "set MODEL.ROI_HEADS.NUM_CLASSES to 8" in message
    assert "more mismatched parameters" in message  # bbox_pred and both mask predictors too


def test_semantic_class_count_mismatch(tmp_path):
    path = _save(_TinyModel(sem=19), tmp_path)
    with pytest.raises(
        CheckpointShapeMismatchError,
        match=r"sem_seg_head\.predictor.*" r"set MODEL\.SEM_SEG_HEAD\.NUM_CLASSES to 19",
    ):
        load_weights(_TinyModel(sem=18), path)


def test_amodal_head_only_mismatch(tmp_path):
    source = _TinyModel()
    source.roi_heads.amodal_mask_head.predictor = nn.Conv2d(4, 1, 1)  # class-agnostic
    path = _save(source, tmp_path)
    with pytest.raises(
        CheckpointShapeMismatchError, match="amodal_mask_head.predictor.*CLS_AGNOSTIC_MASK"
    ):
        load_weights(_TinyModel(), path)


def test_allow_shape_mismatch_keeps_detectron2_behaviour(tmp_path):
    path = _save(_TinyModel(things=8), tmp_path)
    target = _TinyModel(things=7)
    before = target.roi_heads.box_predictor.cls_score.weight.clone()
    load_weights(target, path, allow_shape_mismatch=True)
    assert torch.equal(target.roi_heads.box_predictor.cls_score.weight, before)


def test_describe_other_mismatch():
    text = describe_shape_mismatch("backbone.weight", (8, 3, 1, 1), (4, 3, 1, 1))
    assert "'backbone.weight' has shape (8, 3, 1, 1) in the checkpoint but (4, 3, 1, 1)" in text
    assert "does not describe the architecture" in text
    # Same class count in a class-count layer (e.g. another hidden size): no class hint.
    text = describe_shape_mismatch("roi_heads.box_predictor.cls_score.weight", (8, 16), (8, 32))
    assert "NUM_CLASSES" not in text


def test_garbage_file_message_gives_no_unsafe_advice(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x80\x04garbage that is not a checkpoint" * 4)
    with pytest.raises(WeightsUnreadableError) as info:
        load_weights(_TinyModel(), str(garbage))
    message = str(info.value)
    assert message.startswith(f"{garbage}: not a readable")
    # torch's text advises weights_only=False, which would run code from a suspicious file.
    assert "weights_only" not in message and "\n" not in message


def test_missing_head_parameters_are_refused(tmp_path):
    source = _TinyModel()
    del source.sem_seg_head  # e.g. a backbone-only checkpoint used for evaluation
    path = _save(source, tmp_path)
    with pytest.raises(CheckpointShapeMismatchError, match="has no parameter 'sem_seg_head"):
        load_weights(_TinyModel(), path)


def test_fine_tuning_logs_one_warning_summary(tmp_path, caplog, capture_log):
    path = _save(_TinyModel(things=8), tmp_path)
    with capture_log("unlock.utils.checkpoint"):
        load_weights(_TinyModel(things=7), path, allow_shape_mismatch=True)
    # The handler may see a record twice (here and via the root logger): count records once.
    summary = list({id(r): r for r in caplog.records if "NOT LOADED" in r.getMessage()}.values())
    assert len(summary) == 1 and summary[0].levelno == logging.WARNING
    text = summary[0].getMessage()
    assert text.startswith(path) and "8 parameters with another shape" in text
    assert "trained with 8 classes, the config builds 7" in text
    assert "missing from the checkpoint" not in text  # the skipped ones are not listed twice


def test_save_is_atomic(tmp_path, monkeypatch):
    model = _TinyModel()
    checkpointer = UnlockCheckpointer(model, str(tmp_path))
    checkpointer.save("model_0000001")
    good = (tmp_path / "model_0000001.pth").read_bytes()

    def killed_mid_write(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # stands for the kill: nothing after this line runs

    monkeypatch.setattr(torch, "save", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        checkpointer.save("model_0000001")
    with pytest.raises(KeyboardInterrupt):
        checkpointer.save("model_0000002")
    assert (tmp_path / "model_0000001.pth").read_bytes() == good
    assert not (tmp_path / "model_0000002.pth").exists()
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000001.pth"]
