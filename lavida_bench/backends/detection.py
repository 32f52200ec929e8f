"""Object detectors with instance masks, for GenEval.

GenEval's official detector is MMDetection 2.x Mask2Former Swin-S trained on COCO instances
(djghosh13/geneval `evaluation/download_models.sh`, `evaluation/evaluate_images.py`). Two real backends:

- `mmdet`: the official model and code path; needs MMDetection 2.x installed from a source
  checkout and the official checkpoint (imported lazily, clear error when missing).
- `mask2former`: the same architecture family through `transformers`
  (`Mask2FormerForUniversalSegmentation`), which installs cleanly. Its post-processing below
  follows MMDetection's instance post-processing (top-k over query x class, score = class
  probability x mean mask probability, masks at full image resolution, boxes from masks), but the
  pre-processing comes from the checkpoint's own image-processor config (the official test
  pipeline resizes to 1333x800; Hugging Face COCO checkpoints usually resize to 384), so scores
  can differ by a few points. docs/backends.md says more.

Detectors return every detection above `detector_min_score`; GenEval's thresholds (0.3 / 0.9) and
16-per-class cap are applied by the task.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from PIL import Image

from lavida_bench.backends.base import Backend
from lavida_bench.backends.local import optional_import, require_path, resolve_device

if TYPE_CHECKING:
    from lavida_bench.backends import BackendsConfig

Box = tuple[float, float, float, float]


@dataclass(eq=False)  # a numpy mask makes field-wise == ambiguous; compare fields explicitly
class Detection:
    """One detected instance: class `label`, confidence `score`, `box` xyxy pixels (exclusive
    end), and a boolean instance `mask` of shape [H, W] (the image's size)."""

    label: str
    score: float
    box: Box
    mask: np.ndarray


def box_from_mask(mask: np.ndarray) -> Box:
    """Tight xyxy box (exclusive end) around the true pixels of a [H, W] mask; zeros if empty.

    MMDetection's Mask2Former also derives its boxes from the masks (`mask2bbox`)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return (0.0, 0.0, 0.0, 0.0)
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


def read_class_names(path: Path) -> list[str]:
    """Class names, one per line, in the detector's index order (GenEval's object_names.txt)."""
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    if not names or any(not n for n in names):
        raise ValueError(f"{path}: expected one class name per line, no blank lines "
                         f"(GenEval's evaluation/object_names.txt)")
    return names


def checked_class_names(cfg: BackendsConfig, num_classes: int, fallback: list[str]) -> list[str]:
    """`backends.detector_classes` if set (must have one line per model class), else the model's
    own names. GenEval matches prompt classes by name, so index order is what counts."""
    if not cfg.detector_classes:
        return fallback
    path = require_path(cfg.detector_classes, "detector_classes",
                        "a text file of class names in model index order (GenEval's object_names.txt)")
    names = read_class_names(path)
    if len(names) != num_classes:
        raise ValueError(f"backends.detector_classes={path}: {len(names)} names, but the detector "
                         f"has {num_classes} classes")
    return names


class Mask2FormerDetector(Backend):
    """`transformers` Mask2Former (COCO instance) from a local folder saved with save_pretrained."""

    name: ClassVar[str] = "mask2former"
    path_key = "detector_path"
    path_hint = ("a local transformers Mask2Former COCO-instance folder (config.json, weights, "
                 "preprocessor_config.json), e.g. facebook/mask2former-swin-small-coco-instance")

    def __init__(self, model: Any, processor: Any, class_names: list[str], device: str,
                 min_score: float, max_per_image: int = 100):
        self.model, self.processor, self.class_names = model, processor, class_names
        self.device, self.min_score, self.max_per_image = device, min_score, max_per_image

    @classmethod
    def from_config(cls, cfg: BackendsConfig, cache_dir: Path | None = None) -> Mask2FormerDetector:
        from transformers import AutoImageProcessor, Mask2FormerForUniversalSegmentation

        path = require_path(cfg.detector_path, cls.path_key, cls.path_hint)
        device = resolve_device(cfg.device)
        model = Mask2FormerForUniversalSegmentation.from_pretrained(path, local_files_only=True)
        processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        num_classes = model.config.num_labels
        fallback = [model.config.id2label[i] for i in range(num_classes)]
        names = checked_class_names(cfg, num_classes, fallback)
        return cls(model.to(device).eval(), processor, names, device, cfg.detector_min_score)

    @classmethod
    def describe(cls, cfg: BackendsConfig) -> dict[str, Any]:
        return {"implementation": "transformers Mask2FormerForUniversalSegmentation",
                "min_score": cfg.detector_min_score, "classes_file": cfg.detector_classes}

    def detect(self, image: Image.Image) -> list[Detection]:
        import torch

        image = image.convert("RGB")
        width, height = image.size
        inputs = self.processor(images=[image], return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(self.device)
        with torch.inference_mode():
            out = self.model(pixel_values=pixel_values)
        class_logits = out.class_queries_logits[0].float()  # [Q, C+1], last = "no object"
        mask_logits = out.masks_queries_logits[0].float()  # [Q, h, w]
        valid = _valid_region(inputs.get("pixel_mask"), pixel_values.shape[-2:])
        return self._postprocess(class_logits, mask_logits, tuple(pixel_values.shape[-2:]),
                                 valid, (height, width))

    def _postprocess(self, class_logits: Any, mask_logits: Any, input_hw: tuple[int, int],
                     valid_hw: tuple[int, int], image_hw: tuple[int, int]) -> list[Detection]:
        """Top-k over (query, class) pairs; masks upsampled to the network input, cropped to the
        un-padded region, resized to the image, thresholded at logit 0 (MMDetection's
        MaskFormerFusionHead.instance_postprocess and simple_test, re-implemented)."""
        import torch
        import torch.nn.functional as F

        num_classes = class_logits.shape[1] - 1
        probs = class_logits.softmax(-1)[:, :-1]  # [Q, C]
        k = min(self.max_per_image, probs.numel())
        top_scores, top_idx = probs.flatten().topk(k)
        queries, labels = top_idx // num_classes, top_idx % num_classes
        detections: list[Detection] = []
        for query in torch.unique(queries).tolist():
            logits = F.interpolate(mask_logits[query][None, None], size=input_hw, mode="bilinear",
                                   align_corners=False)[:, :, :valid_hw[0], :valid_hw[1]]
            logits = F.interpolate(logits, size=image_hw, mode="bilinear", align_corners=False)[0, 0]
            binary = logits > 0
            area = binary.sum()
            mask_score = float((logits.sigmoid() * binary).sum() / (area + 1e-6))
            mask_np = binary.cpu().numpy()
            for j in torch.nonzero(queries == query).flatten().tolist():
                score = float(top_scores[j]) * mask_score
                if score < self.min_score or int(area) == 0:
                    continue
                detections.append(Detection(self.class_names[int(labels[j])], score,
                                            box_from_mask(mask_np), mask_np))
        return detections


def _valid_region(pixel_mask: Any, input_hw: Any) -> tuple[int, int]:
    """Height and width of the un-padded part of the network input (the whole input if the
    processor returned no pixel mask)."""
    if pixel_mask is None:
        return int(input_hw[0]), int(input_hw[1])
    m = pixel_mask[0]
    return int(m.any(dim=1).sum()), int(m.any(dim=0).sum())


# Where GenEval takes the config from: relative to the installed mmdet package
# (djghosh13/geneval evaluation/evaluate_images.py `parse_args`).
MMDET_CONFIG = "configs/mask2former/mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco.py"


class MMDetDetector(Backend):
    """The official GenEval detector through MMDetection 2.x (lazy import)."""

    name: ClassVar[str] = "mmdet"
    path_key = "detector_path"
    path_hint = ("the official checkpoint mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco.pth "
                 "(or its folder)")

    def __init__(self, model: Any, class_names: list[str], min_score: float):
        self.model, self.class_names, self.min_score = model, class_names, min_score

    @classmethod
    def _config_file(cls, cfg: BackendsConfig, mmdet: Any) -> Path:
        if cfg.detector_config:
            return require_path(cfg.detector_config, "detector_config",
                                "the MMDetection config file " + Path(MMDET_CONFIG).name)
        path = Path(mmdet.__file__).parent.parent / MMDET_CONFIG
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: install MMDetection 2.x from a source "
                                    f"checkout (GenEval does) or set backends.detector_config")
        return path

    @classmethod
    def from_config(cls, cfg: BackendsConfig, cache_dir: Path | None = None) -> MMDetDetector:
        path = require_path(cfg.detector_path, cls.path_key, cls.path_hint)
        mmdet = optional_import("mmdet", cls.name, "mmcv-full 1.7.1 and mmdetection from branch "
                                "2.x (GenEval's environment.yml)")
        apis = optional_import("mmdet.apis", cls.name, "mmdetection 2.x")
        if path.is_dir():
            found = sorted(path.glob("*.pth"))
            if len(found) != 1:
                raise FileNotFoundError(f"backends.detector_path={path}: expected exactly one "
                                        f".pth checkpoint in the folder, found {len(found)}")
            path = found[0]
        model = apis.init_detector(str(cls._config_file(cfg, mmdet)), str(path),
                                   device=resolve_device(cfg.device))
        model_names = list(getattr(model, "CLASSES", None) or [])
        if model_names:
            names = checked_class_names(cfg, len(model_names), model_names)
        elif cfg.detector_classes:
            names = read_class_names(require_path(cfg.detector_classes, "detector_classes",
                                                  "GenEval's object_names.txt"))
        else:
            raise ValueError("the MMDetection model has no CLASSES: set backends.detector_classes "
                             "to GenEval's object_names.txt")
        return cls(model, names, cfg.detector_min_score)

    @classmethod
    def describe(cls, cfg: BackendsConfig) -> dict[str, Any]:
        return {"implementation": "mmdet 2.x inference_detector", "config": cfg.detector_config
                or MMDET_CONFIG, "min_score": cfg.detector_min_score,
                "classes_file": cfg.detector_classes}

    def detect(self, image: Image.Image) -> list[Detection]:
        from mmdet.apis import inference_detector

        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])  # mmdet reads BGR
        result = inference_detector(self.model, bgr)
        boxes, masks = result if isinstance(result, tuple) else (result, None)
        if masks is None:
            raise RuntimeError("the MMDetection model returned no instance masks; GenEval needs "
                               "an instance-segmentation model")
        return self.from_mmdet_result(boxes, masks)

    def from_mmdet_result(self, boxes: list[np.ndarray], masks: list[list[np.ndarray]]) -> list[Detection]:
        """Per-class arrays [n, 5] (x1, y1, x2, y2, score) and per-class mask lists -> detections."""
        if len(boxes) != len(self.class_names):
            raise ValueError(f"detector returned {len(boxes)} classes, expected {len(self.class_names)}")
        detections = []
        for index, (class_boxes, class_masks) in enumerate(zip(boxes, masks)):
            for row, mask in zip(np.asarray(class_boxes).reshape(-1, 5), class_masks):
                if float(row[4]) >= self.min_score:
                    detections.append(Detection(self.class_names[index], float(row[4]),
                                                tuple(float(v) for v in row[:4]),
                                                np.asarray(mask, dtype=bool)))
        return detections
