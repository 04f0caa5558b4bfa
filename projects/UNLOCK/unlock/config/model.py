"""Model keys: the amodal mask head beside the visible one, and the occlusion-aware fusion."""
from detectron2.config import CfgNode as CN


def add_amodal_model_config(cfg):
    # Mirrors MODEL.MASK_ON / KEYPOINT_ON: build the amodal mask branch in the ROI heads.
    cfg.MODEL.AMODAL_ON = True
    # Visible mask head (ROI_MASK_HEAD_REGISTRY): detectron2's conv + deconv head trained with the
    # uncertainty-guided loss of MODEL.MASK_LOSS; any other registered head keeps its own loss.
    cfg.MODEL.ROI_MASK_HEAD.NAME = "IgnoreAwareMaskRCNNConvUpsampleHead"

    cfg.MODEL.ROI_AMODAL_MASK_HEAD = CN()
    # Name in ROI_AMODAL_MASK_HEAD_REGISTRY.
    cfg.MODEL.ROI_AMODAL_MASK_HEAD.NAME = "AmodalMaskRCNNConvUpsampleHead"
    # Convs before the 2x deconv (4 in Mask R-CNN and in the authors' FCN mask head).
    cfg.MODEL.ROI_AMODAL_MASK_HEAD.NUM_CONV = 4
    # Channels of those convs.
    cfg.MODEL.ROI_AMODAL_MASK_HEAD.CONV_DIM = 256
    # Normalisation of the convs ("", "BN", "GN", ...).
    cfg.MODEL.ROI_AMODAL_MASK_HEAD.NORM = ""
    # One mask for all classes instead of one per class.
    cfg.MODEL.ROI_AMODAL_MASK_HEAD.CLS_AGNOSTIC_MASK = False
    # RoIAlign output side; the predicted mask is twice this size.
    cfg.MODEL.ROI_AMODAL_MASK_HEAD.POOLER_RESOLUTION = 14
    # RoIAlign sampling ratio (0 = adaptive).
    cfg.MODEL.ROI_AMODAL_MASK_HEAD.POOLER_SAMPLING_RATIO = 0
    # RoIAlign variant, as in ROI_MASK_HEAD.
    cfg.MODEL.ROI_AMODAL_MASK_HEAD.POOLER_TYPE = "ROIAlignV2"
    # Weight of loss_amodal_mask.
    cfg.MODEL.ROI_AMODAL_MASK_HEAD.LOSS_WEIGHT = 1.0

    # Ignore-aware mask losses (paper Eq. 7), shared by the visible and the amodal mask heads.
    cfg.MODEL.MASK_LOSS = CN()
    # "intended": RoI cells inside the uncertainty region get weight 0 (paper Eq. 7).
    # "faithful": the authors' code, where the bool cast turns fully-uncertain cells into positives
    # (docs/method.md, "The authors' code"). "none": ignore maps are not used at all.
    cfg.MODEL.MASK_LOSS.IGNORE_MODE = "intended"
    # A cell is ignored when the RoI-aligned ignore coverage is at least this value.
    cfg.MODEL.MASK_LOSS.IGNORE_COVERAGE = 0.5
    # "valid": mean over non-ignored cells; "all": mean over all cells of the RoIs of objects
    # labelled in that branch (authors' code).
    cfg.MODEL.MASK_LOSS.NORMALIZATION = "valid"
    # Weight of the visible loss_mask.
    cfg.MODEL.MASK_LOSS.VISIBLE_WEIGHT = 1.0

    # Occlusion-aware fusion of semantic, visible and amodal predictions (paper Sec. 6, Fig. 8;
    # rules in docs/design.md "Occlusion-aware fusion").
    cfg.MODEL.AMODAL_PANOPTIC_FPN = CN()
    # Return panoptic_seg and amodal_panoptic_seg beside sem_seg and instances.
    cfg.MODEL.AMODAL_PANOPTIC_FPN.COMBINE_ON = True
    cfg.MODEL.AMODAL_PANOPTIC_FPN.COMBINE = CN()
    # Visible masks scoring at least this enter panoptic_seg (reference: 0.55).
    cfg.MODEL.AMODAL_PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH = 0.55
    # Amodal masks scoring at least this enter amodal_panoptic_seg (reference: 0.5).
    cfg.MODEL.AMODAL_PANOPTIC_FPN.COMBINE.AMODAL_CONFIDENCE_THRESH = 0.5
    # Stuff segments smaller than this many pixels become void (reference: 2048 at 2048x400).
    cfg.MODEL.AMODAL_PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT = 2048
    # Class of a thing segment = majority vote of the semantic prediction over it (reference);
    # False keeps the detector's class.
    cfg.MODEL.AMODAL_PANOPTIC_FPN.COMBINE.THING_CLASS_FROM_SEMANTIC = True
    # Restrict thing segments to pixels the semantic head calls a thing (the reference fusion's
    # rule, which drops occluded amodal parts behind predicted stuff).
    cfg.MODEL.AMODAL_PANOPTIC_FPN.COMBINE.CLIP_TO_SEMANTIC_THINGS = True
    # Overlaps between visible masks: "score" (higher score wins, detectron2) or "reference"
    # (class order then score order, later overwrites: the lower score wins inside a class).
    cfg.MODEL.AMODAL_PANOPTIC_FPN.COMBINE.OVERLAP_ORDER = "score"
    # Unite each amodal thing segment with its own detection's visible segment (visible ⊆ amodal
    # in the output); False is the published fusion, whose amodal detections are not linked.
    cfg.MODEL.AMODAL_PANOPTIC_FPN.COMBINE.AMODAL_INCLUDES_VISIBLE = True
    # Weight of loss_sem_seg relative to the instance losses.
    cfg.MODEL.AMODAL_PANOPTIC_FPN.SEM_SEG_LOSS_WEIGHT = 1.0
