"""Parameter accounting per branch and per task, computed on the meta device (no memory).

Groups follow the release's module tree (LaVida-O `llava/model/language_model/llada/modeling_llada.py:971-1040`,
`llava/model/llava_arch.py:70-185`; shapes from the config printed in `Demo.ipynb` cell 3). "Active" counts are the weights that influence a task's
output: text-to-image needs the understanding blocks only up to the last joint-attention block
(later text rows cannot reach the image), the gen branch, its I/O modules and the text
embedding; interleaved tasks (planning, reflection, editing) need both full branches.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lavida_bench.model.config import LavidaConfig

# The paper's figures (arXiv 2509.19244): 8B understanding, 2.4B generation, 6.4B active for
# text-to-image, 10.4B for interleaved tasks.
PAPER_BILLIONS = {"understanding": 8.0, "generation": 2.4, "text_to_image": 6.4, "interleaved": 10.4}
GEN_IO = ("gen_embedding", "gen_embedding_2", "gen_predictor", "gen_predictor_2", "downsample_gen", "upsample_gen")
VISION = ("vision_tower", "vision_resampler", "mm_projector", "image_newline")


@dataclass(frozen=True)
class ParamCounts:
    und_blocks: list[int]  # per block, understanding sub-layers
    gen_blocks: list[int]  # per block, `_vision` sub-layers
    embedding: int  # wte
    head: int  # ff_out (text head) + ln_f
    gen_io: int
    vision: int
    joint_layers: int

    @property
    def understanding(self) -> int:
        return sum(self.und_blocks) + self.embedding + self.head

    @property
    def generation(self) -> int:
        """The generation transformer (the paper's 2.4B); its I/O modules are `gen_io`."""
        return sum(self.gen_blocks)

    def text_to_image(self, joint_layers: int | None = None) -> int:
        """Weights that reach the image: und blocks up to the last joint one, wte, gen branch + I/O."""
        j = self.joint_layers if joint_layers is None else joint_layers
        return sum(self.und_blocks[:j]) + self.embedding + self.generation + self.gen_io

    def text_to_image_paper(self) -> int:
        """The paper's accounting, which reproduces its 6.4B: 16 joint blocks (the paper's wording;
        the released code uses 17, see config.joint_layers), wte and the gen transformer without its
        I/O modules. `text_to_image()` is what the released code actually needs (6.73B)."""
        return sum(self.und_blocks[:16]) + self.embedding + self.generation

    @property
    def interleaved(self) -> int:
        return self.understanding + self.generation + self.gen_io

    @property
    def total(self) -> int:
        return self.understanding + self.generation + self.gen_io + self.vision

    def table(self) -> dict[str, int]:
        return {"understanding": self.understanding, "generation": self.generation, "gen_io": self.gen_io,
                "vision": self.vision, "text_to_image": self.text_to_image(),
                "text_to_image_paper_accounting": self.text_to_image_paper(),
                "interleaved": self.interleaved, "total": self.total}


def count_parameters(cfg: LavidaConfig) -> ParamCounts:
    from lavida_bench.model.network import LavidaNetwork

    with torch.device("meta"):
        net = LavidaNetwork(cfg)
    core = net.model
    und, gen = [], []
    for block in core.transformer.blocks:
        named = list(block.named_parameters())
        gen.append(sum(p.numel() for n, p in named if "_vision" in n))
        und.append(sum(p.numel() for n, p in named if "_vision" not in n))
    size = lambda *names: sum(p.numel() for n in names if hasattr(core, n)  # noqa: E731
                              for p in ([getattr(core, n)] if isinstance(getattr(core, n), torch.nn.Parameter)
                                        else getattr(core, n).parameters()))
    t = core.transformer
    return ParamCounts(und, gen, t.wte.weight.numel(), t.ff_out.weight.numel() + t.ln_f.weight.numel(),
                       size(*GEN_IO), size(*VISION), cfg.joint_layers)
