import os
import sys

import torch

# Two cores are shared by the whole suite; one intra-op thread per test process keeps it steady.
torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
