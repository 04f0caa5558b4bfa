"""ADCL: amodal-driven object pool and spatial-aware object pasting (paper Sec. 3.3)."""

from .object_pool import build_object_pool, pool_objects_of_image
from .paste import MIX_MODES, PasteResult, paste_objects, paste_region
from .paste_mapper import ObjectPasteDatasetMapper, default_pool_dir
from .pool_store import POOL_SAMPLINGS, ObjectPool, PoolIndex, PoolObject, load_object_pool
from .seam_wrap import flatten_pool_object, panorama_full_mask, unwrap_pool_object

__all__ = [
    "ObjectPool",
    "PoolIndex",
    "PoolObject",
    "build_object_pool",
    "load_object_pool",
    "pool_objects_of_image",
    "MIX_MODES",
    "POOL_SAMPLINGS",
    "PasteResult",
    "paste_objects",
    "paste_region",
    "ObjectPasteDatasetMapper",
    "default_pool_dir",
    "flatten_pool_object",
    "panorama_full_mask",
    "unwrap_pool_object",
]
