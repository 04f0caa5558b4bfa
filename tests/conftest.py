import contextlib
import logging
import os
import sys

import pytest
import torch

# Two cores are shared by the whole suite; one intra-op thread per test process keeps it steady.
torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def capture_log(caplog):
    """``with capture_log("unlock.x", logging.INFO): ...`` records that logger in caplog.text even
    when detectron2's setup_logger (called by other tests) has turned propagation off."""

    @contextlib.contextmanager
    def capture(name: str, level: int = logging.INFO):
        log = logging.getLogger(name)
        old_level = log.level
        log.addHandler(caplog.handler)
        log.setLevel(level)
        try:
            yield
        finally:
            log.removeHandler(caplog.handler)
            log.setLevel(old_level)

    return capture
