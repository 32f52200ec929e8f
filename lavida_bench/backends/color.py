"""CLIP zero-shot colour classification, GenEval's colour attribute check.

GenEval (djghosh13/geneval `evaluation/evaluate_images.py`, `color_classification`) builds one
zero-shot classifier per object class with clip_benchmark's `zero_shot_classifier`: for each
colour, encode the three templates below, L2-normalise each embedding, average, normalise again;
an image crop (masked onto #999 grey by the task, then CLIP preprocessing) gets the colour with
the largest cosine similarity. Model: open_clip `ViT-L-14`, `pretrained="openai"` (evaluate_images.py `load_models`).

Backends: `clip` (the same OpenAI ViT-L/14 weights through `transformers`' CLIPModel, from a
local folder) and `open_clip` (the official library, when installed, from a local checkpoint
file). Both share the classifier code below and differ only in how they encode.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from PIL import Image

from lavida_bench.backends.base import Backend
from lavida_bench.backends.local import optional_import, require_path, resolve_device

if TYPE_CHECKING:
    import torch

    from lavida_bench.backends import BackendsConfig

# GenEval's templates ({c} = colour, {obj} = the object class of the clause), evaluate_images.py.
TEMPLATES = ("a photo of a {c} {obj}", "a photo of a {c}-colored {obj}", "a photo of a {c} object")
# GenEval's colours, in its order (evaluate_images.py `COLORS`).
GENEVAL_COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
DEFAULT_OBJECT = "object"  # used when the caller does not name the object class


class ZeroShotColorClassifier(Backend):
    """Shared zero-shot logic; subclasses implement `_encode_text` and `_encode_images`."""

    path_key = "color_path"

    def __init__(self, device: str):
        self.device = device
        self._heads: dict[tuple[str, tuple[str, ...]], Any] = {}

    def _encode_text(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    def _encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        raise NotImplementedError

    def head(self, obj: str, colors: tuple[str, ...]) -> torch.Tensor:
        """[num_colors, D] class embeddings for one object class (cached)."""
        import torch.nn.functional as F

        key = (obj, colors)
        if key not in self._heads:
            rows = []
            for color in colors:
                emb = F.normalize(self._encode_text([t.format(c=color, obj=obj) for t in TEMPLATES]), dim=-1)
                rows.append(F.normalize(emb.mean(dim=0), dim=-1))
            import torch

            self._heads[key] = torch.stack(rows)
        return self._heads[key]

    def classify(self, crops: list[Image.Image], colors: list[str], obj: str | None = None) -> list[str]:
        """One colour name per crop: argmax of cosine similarity to the colour embeddings."""
        import torch
        import torch.nn.functional as F

        if not crops:
            return []
        if not colors:
            raise ValueError("classify needs at least one colour name")
        with torch.inference_mode():
            head = self.head(obj or DEFAULT_OBJECT, tuple(colors))
            feats = F.normalize(self._encode_images([c.convert("RGB") for c in crops]), dim=-1)
            best = (feats @ head.T).argmax(dim=-1).tolist()
        return [colors[i] for i in best]


def _pooled(output: Any) -> torch.Tensor:
    """transformers 5 returns an output object from get_*_features; older versions a tensor."""
    return output if hasattr(output, "dim") else output.pooler_output


class ClipColorClassifier(ZeroShotColorClassifier):
    """CLIP through `transformers` (CLIPModel + tokenizer + image processor in one local folder)."""

    name: ClassVar[str] = "clip"
    path_hint = "a local transformers CLIP folder (openai/clip-vit-large-patch14 saved with save_pretrained)"

    def __init__(self, model: Any, tokenizer: Any, image_processor: Any, device: str):
        super().__init__(device)
        self.model, self.tokenizer, self.image_processor = model, tokenizer, image_processor

    @classmethod
    def from_config(cls, cfg: BackendsConfig, cache_dir: Path | None = None) -> ClipColorClassifier:
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

        path = require_path(cfg.color_path, cls.path_key, cls.path_hint)
        device = resolve_device(cfg.device)
        model = CLIPModel.from_pretrained(path, local_files_only=True).to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        image_processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        return cls(model, tokenizer, image_processor, device)

    @classmethod
    def describe(cls, cfg: BackendsConfig) -> dict[str, Any]:
        return {"implementation": "transformers CLIPModel", "templates": list(TEMPLATES)}

    def _encode_text(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts, padding=True, return_tensors="pt").to(self.device)
        return _pooled(self.model.get_text_features(input_ids=tokens["input_ids"],
                                                    attention_mask=tokens.get("attention_mask"))).float()

    def _encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        pixels = self.image_processor(images=images, return_tensors="pt")["pixel_values"].to(self.device)
        return _pooled(self.model.get_image_features(pixel_values=pixels)).float()


OPEN_CLIP_ARCH = "ViT-L-14"  # GenEval's clip_arch (evaluate_images.py `load_models`)


class OpenClipColorClassifier(ZeroShotColorClassifier):
    """The official open_clip ViT-L-14 with OpenAI weights from a local checkpoint file."""

    name: ClassVar[str] = "open_clip"
    path_hint = "open_clip's ViT-L-14 OpenAI checkpoint file (e.g. ViT-L-14.pt)"

    def __init__(self, model: Any, preprocess: Any, tokenizer: Any, device: str):
        super().__init__(device)
        self.model, self.preprocess, self.tokenizer = model, preprocess, tokenizer

    @classmethod
    def from_config(cls, cfg: BackendsConfig, cache_dir: Path | None = None) -> OpenClipColorClassifier:
        path = require_path(cfg.color_path, cls.path_key, cls.path_hint)
        open_clip = optional_import("open_clip", cls.name, "pip install open-clip-torch==2.20.0")
        device = resolve_device(cfg.device)
        model, _, preprocess = open_clip.create_model_and_transforms(OPEN_CLIP_ARCH, pretrained=str(path),
                                                                     device=device)
        return cls(model.eval(), preprocess, open_clip.get_tokenizer(OPEN_CLIP_ARCH), device)

    @classmethod
    def describe(cls, cfg: BackendsConfig) -> dict[str, Any]:
        return {"implementation": f"open_clip {OPEN_CLIP_ARCH}", "templates": list(TEMPLATES)}

    def _encode_text(self, texts: list[str]) -> torch.Tensor:
        return self.model.encode_text(self.tokenizer(texts).to(self.device)).float()

    def _encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        import torch

        batch = torch.stack([self.preprocess(im) for im in images]).to(self.device)
        return self.model.encode_image(batch).float()
