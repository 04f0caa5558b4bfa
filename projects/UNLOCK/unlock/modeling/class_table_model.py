"""The class-table half of every UNLOCK meta-architecture's configuration."""

from detectron2.config import configurable

from ..class_table import ClassTable, class_table_from_config

__all__ = ["ClassTableModel"]


class ClassTableModel:
    """Mixin, before a detectron2 meta-architecture in the bases: the model receives the datasets'
    class table through ``from_config`` (checked against the config's class counts by
    :func:`class_table_from_config`) and keeps it as ``self.class_table``; models read no
    global catalog after construction."""

    @configurable
    def __init__(self, *, class_table: ClassTable, **kwargs):
        super().__init__(**kwargs)
        self.class_table = class_table

    @classmethod
    def from_config(cls, cfg):
        ret = super().from_config(cfg)
        ret["class_table"] = class_table_from_config(cfg)
        return ret
