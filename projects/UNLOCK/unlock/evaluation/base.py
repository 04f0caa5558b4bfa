"""What every UNLOCK evaluator shares: the split's GT lookup, the protocols, and per-process
statistics gathered to the main process (detectron2's SemSegEvaluator pattern: accumulate
statistics, never images)."""

from typing import Any, Dict, List, Optional, Sequence

from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from unlock.class_table import ClassTable, dataset_class_table

from .ground_truth import GroundTruthLookup, clear_cache


# MetadataCatalog evaluator_type of the splits with the five labels, of the amodal instance
# splits (KINS / COCOA style: AP and AAP only) and of the semantic-only ones (mIoU only)
# (a semantic-only split has detectron2's "sem_seg" type).
PANOPTIC_EVALUATOR_TYPE = "amodal_panoptic"
INSTANCE_EVALUATOR_TYPE = "amodal_instance"
SEMANTIC_EVALUATOR_TYPE = "sem_seg"
_GROUND_TRUTH_KIND = {INSTANCE_EVALUATOR_TYPE: "instance", SEMANTIC_EVALUATOR_TYPE: "semantic"}


def ground_truth_kind(dataset_name: str) -> str:
    """"panoptic", "instance" or "semantic": how a labelled split stores its ground truth."""
    return _GROUND_TRUTH_KIND.get(MetadataCatalog.get(dataset_name).get("evaluator_type"), "panoptic")


def protocol_suffix(protocol: str) -> str:
    """Result-key suffix of a protocol: the reference (oass) numbers carry none."""
    return "" if protocol == "oass" else f"_{protocol}"


class GroundTruthEvaluator(DatasetEvaluator):
    """Base of the metric evaluators; subclasses define ``_new_statistics`` and ``evaluate``.

    The classes come from ``class_table`` or, as for detectron2's evaluators, from the
    ``MetadataCatalog`` entry of ``dataset_name`` (:meth:`ClassTable.from_metadata`).
    """

    def __init__(
        self,
        dataset_name: str,
        protocols: Sequence[str] = ("oass", "strict"),
        repair_amodal: bool = True,
        *,
        class_table: Optional[ClassTable] = None,
    ):
        self._dataset_name = dataset_name
        self._class_table = class_table or dataset_class_table(dataset_name)
        # UNLOCK.DATA.REPAIR_AMODAL: False makes a GT amodal mask repaired at load time an error
        # of the strict protocol (the only one that scores repaired masks).
        self._repair_amodal = bool(repair_amodal)
        self._protocols = list(protocols)
        self.reset()

    def _new_statistics(self) -> Any:
        raise NotImplementedError

    def reset(self) -> None:
        clear_cache()
        self._gt = GroundTruthLookup(
            self._dataset_name,
            class_table=self._class_table,
            repair_amodal=self._repair_amodal,
            protocols=self._protocols,
            kind=ground_truth_kind(self._dataset_name),
        )
        self._stats = self._new_statistics()

    def _gathered_statistics(self) -> Optional[List[Any]]:
        """Every process's statistics on the main process; None on the others."""
        gathered = comm.gather(self._stats, dst=0)
        return gathered if comm.is_main_process() else None

    def _summed_statistics(self) -> Optional[Dict[str, Any]]:
        """{key: the statistics of every process added up (``+=``)} on the main process; None on
        the others. For evaluators whose statistics are a dict of accumulators (one per protocol,
        and per protocol the seam-crossing ones, docs/evaluation.md "Seam-crossing objects")."""
        gathered = self._gathered_statistics()
        if gathered is None:
            return None
        total = self._new_statistics()
        for stats in gathered:
            for key in total:
                total[key] += stats[key]
        return total
