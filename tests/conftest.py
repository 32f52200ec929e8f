"""Session-wide test settings: tiny models on a shared 2-core CPU run far faster single-threaded
(torch's thread hand-offs dominate tiny matmuls), so tests use one torch thread."""
import torch

torch.set_num_threads(1)
