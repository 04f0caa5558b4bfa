"""draw_five_outputs: one picture of the input and the five outputs, panels stacked vertically."""

import numpy as np
import torch
from detectron2.data.catalog import Metadata

from unlock.utils.five_outputs import draw_five_outputs
from visual_fixtures import H, META, W, black, make_instances, make_outputs


def test_five_outputs_picture_shape_and_type():
    picture = draw_five_outputs(black(), make_outputs(), META)
    bar = 18  # title bar: clip(H // 10, 18, 40)
    assert picture.dtype == np.uint8
    assert picture.shape == (6 * (H + bar), W, 3)
    # The first panel is the untouched input under its title bar.
    assert (picture[bar : bar + H] == 0).all()
    # Every output panel draws something on the black input.
    for p in range(1, 6):
        top = p * (H + bar) + bar
        assert picture[top : top + H].any(), f"panel {p} is empty"


def test_missing_outputs_leave_panels_out():
    outputs = make_outputs()
    del outputs["panoptic_seg"], outputs["amodal_panoptic_seg"]
    picture = draw_five_outputs(black(), outputs, Metadata(name="m").set(**META))
    assert picture.shape == (4 * (H + 18), W, 3)  # input, semantic, visible, amodal


def test_empty_instances_and_no_stuff_do_not_crash():
    inst = make_instances(0)
    outputs = {
        "sem_seg": torch.zeros(18, H, W),
        "instances": inst,
        "panoptic_seg": (torch.zeros(H, W, dtype=torch.int32), []),
        "amodal_panoptic_seg": {
            "stuff_seg": torch.full((H, W), 255, dtype=torch.long),
            "thing_masks": torch.zeros(0, H, W, dtype=torch.bool),
            "segments_info": [],
        },
    }
    picture = draw_five_outputs(black(), outputs, META)
    assert picture.shape == (6 * (H + 18), W, 3)
    for p in (2, 3, 4, 5):  # instances, amodal instances, panoptic, amodal panoptic: nothing drawn
        top = p * (H + 18) + 18
        assert np.abs(picture[top : top + H].astype(int)).max() <= 1
