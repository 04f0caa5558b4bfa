"""The class-table half of every UNLOCK meta-architecture's configuration."""

from detectron2.config import configurable

from ..class_table import ClassTable, class_table_from_config
from ..panorama.wrap_padding import wrap_model_padding

__all__ = ["ClassTableModel"]


class ClassTableModel:
    """Mixin, before a detectron2 meta-architecture in the bases: the model receives the datasets'
    class table through ``from_config`` (checked against the config's class counts by
    :func:`class_table_from_config`) and keeps it as ``self.class_table``; models read no
    global catalog after construction. MODEL.PANORAMA.WRAP_PADDING wraps the padding of the
    parts that see the whole image (:func:`unlock.panorama.wrap_padding.wrap_model_padding`)."""

    @configurable
    def __init__(self, *, class_table: ClassTable, wrap_padding: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.class_table = class_table
        if wrap_padding:
            wrap_model_padding(self)

    @classmethod
    def from_config(cls, cfg):
        ret = super().from_config(cfg)
        ret["class_table"] = class_table_from_config(cfg)
        ret["wrap_padding"] = cfg.MODEL.PANORAMA.WRAP_PADDING
        return ret
