"""Real backends: loading paths with tiny random transformers models saved to a tmp folder
(nothing is downloaded), hand-computed post-processing and zero-shot logic, and clear errors for
the optional packages (mmdet, modelscope, open_clip)."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from PIL import Image

from lavida_bench.backends import Backends, BackendsConfig
from lavida_bench.backends.color import (
    GENEVAL_COLORS,
    TEMPLATES,
    ZeroShotColorClassifier,
)
from lavida_bench.backends.detection import (
    Mask2FormerDetector,
    MMDetDetector,
    box_from_mask,
)

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "a", "photo", "of", "object", "-",
         "colored", "cup", "red", "blue", "green", "yes", "no", "is", "there", "?"]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertTokenizer

    folder = tmp_path_factory.mktemp("tok")
    (folder / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    BertTokenizer(str(folder / "vocab.txt"), bos_token="[DEC]").save_pretrained(folder)
    return folder


def _tiny_layers() -> dict:
    return {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}


# ---------------------------------------------------------------- detector

def test_box_from_mask() -> None:
    mask = np.zeros((5, 6), dtype=bool)
    mask[1:3, 2:5] = True
    assert box_from_mask(mask) == (2.0, 1.0, 5.0, 3.0)
    assert box_from_mask(np.zeros((2, 2), dtype=bool)) == (0.0, 0.0, 0.0, 0.0)


def test_mask2former_postprocess_hand_computed() -> None:
    det = Mask2FormerDetector(None, None, ["cat", "cup"], "cpu", min_score=0.0, max_per_image=2)
    # query 0: softmax -> cat 0.6, cup 0.3, no-object 0.1; query 1: 0.1, 0.1, 0.8
    class_logits = torch.log(torch.tensor([[6.0, 3.0, 1.0], [1.0, 1.0, 8.0]]))
    masks = torch.full((2, 4, 4), -2.0)
    masks[0, :2, :2] = 2.0  # query 0: top-left 2x2, mean mask probability sigmoid(2)
    dets = det._postprocess(class_logits, masks, (4, 4), (4, 4), (4, 4))
    sig2 = 1 / (1 + np.exp(-2.0))
    got = sorted((d.label, round(d.score, 6), d.box, int(d.mask.sum())) for d in dets)
    assert got == [("cat", round(0.6 * sig2, 6), (0.0, 0.0, 2.0, 2.0), 4),
                   ("cup", round(0.3 * sig2, 6), (0.0, 0.0, 2.0, 2.0), 4)]  # top-2 only, query 1 unused
    # a mask that lies only in the padding is cropped away -> no detection
    masks = torch.full((2, 4, 4), -2.0)
    masks[0, 3, :] = 2.0
    assert det._postprocess(class_logits, masks, (4, 4), (2, 4), (2, 4)) == []
    det.min_score = 0.5
    assert det._postprocess(class_logits, torch.full((2, 4, 4), 3.0), (4, 4), (4, 4), (4, 4))[0].label == "cat"


@pytest.fixture(scope="module")
def mask2former_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import (
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        Mask2FormerImageProcessor,
        SwinConfig,
    )

    folder = tmp_path_factory.mktemp("m2f")
    swin = SwinConfig(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                      window_size=2, out_features=["stage1", "stage2", "stage3", "stage4"])
    labels = {0: "cat", 1: "dog", 2: "cup"}
    cfg = Mask2FormerConfig(backbone_config=swin, hidden_dim=32, mask_feature_size=32, feature_size=32,
                            encoder_layers=1, decoder_layers=2, num_attention_heads=2, dim_feedforward=32,
                            num_queries=5, encoder_feedforward_dim=32, common_stride=4, num_labels=3,
                            id2label=labels, label2id={v: k for k, v in labels.items()})
    torch.manual_seed(0)
    Mask2FormerForUniversalSegmentation(cfg).save_pretrained(folder)
    Mask2FormerImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}, size_divisor=32).save_pretrained(folder)
    return folder


def test_mask2former_loads_from_a_local_folder(mask2former_dir: Path, tmp_path: Path) -> None:
    cfg = BackendsConfig(detector="mask2former", detector_path=str(mask2former_dir), detector_min_score=0.0,
                         device="cpu")
    detector = Backends(cfg).detector
    dets = detector.detect(Image.new("RGB", (50, 40), (100, 20, 3)))
    assert len(dets) == 15  # top-100 of 5 queries x 3 classes = all 15 pairs at min_score 0
    assert {d.label for d in dets} <= {"cat", "dog", "cup"}
    assert all(d.mask.shape == (40, 50) and d.mask.dtype == bool and 0 <= d.score <= 1 for d in dets)
    assert all(d.box == box_from_mask(d.mask) for d in dets)
    # GenEval's names by index replace the model's own
    names = tmp_path / "object_names.txt"
    names.write_text("teddy bear\nsports ball\ncomputer keyboard\n")
    cfg.detector_classes = str(names)
    relabelled = Backends(cfg).detector.detect(Image.new("RGB", (50, 40), (100, 20, 3)))
    mapping = {"cat": "teddy bear", "dog": "sports ball", "cup": "computer keyboard"}
    assert [d.label for d in relabelled] == [mapping[d.label] for d in dets]
    names.write_text("only one\n")
    with pytest.raises(ValueError, match="1 names, but the detector has 3"):
        _ = Backends(cfg).detector


def test_mmdet_result_conversion_and_missing_package(tmp_path: Path) -> None:
    det = MMDetDetector(None, ["cat", "cup"], min_score=0.3)
    mask = np.zeros((4, 4), dtype=bool)
    mask[1:3, 1:3] = True
    boxes = [np.array([[1, 1, 3, 3, 0.9], [0, 0, 1, 1, 0.2]]), np.zeros((0, 5))]
    [d] = det.from_mmdet_result(boxes, [[mask, mask], []])
    assert (d.label, d.score, d.box, int(d.mask.sum())) == ("cat", 0.9, (1.0, 1.0, 3.0, 3.0), 4)
    if importlib.util.find_spec("mmdet") is not None:
        pytest.skip("mmdet is installed here")
    ckpt = tmp_path / "mask2former.pth"
    ckpt.write_bytes(b"x")
    with pytest.raises(ImportError, match="backend 'mmdet' needs the package 'mmdet'.*2.x"):
        _ = Backends(BackendsConfig(detector="mmdet", detector_path=str(ckpt))).detector


# ---------------------------------------------------------------- colour

class _ToyClassifier(ZeroShotColorClassifier):
    """Encodes a text by which colour word it holds, an image by its mean RGB."""

    name = "toy"
    AXES: ClassVar[dict[str, int]] = {"red": 0, "green": 1, "blue": 2}

    def __init__(self) -> None:
        super().__init__("cpu")
        self.texts: list[str] = []

    def _encode_text(self, texts: list[str]) -> torch.Tensor:
        self.texts += texts
        rows = []
        for text in texts:
            row = torch.zeros(3)
            for word, axis in self.AXES.items():
                if word in re.split(r"[ -]", text):  # "colored" contains "red"
                    row[axis] = 2.0 if text.endswith("object") else 1.0  # norms differ per template
            rows.append(row)
        return torch.stack(rows)

    def _encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        return torch.from_numpy(np.stack([np.asarray(im, dtype=np.float32).mean(axis=(0, 1)) for im in images]))


def test_zero_shot_uses_genevals_templates_and_argmax() -> None:
    toy = _ToyClassifier()
    crops = [Image.new("RGB", (4, 4), (10, 200, 30)), Image.new("RGB", (4, 4), (0, 0, 255))]
    assert toy.classify(crops, ["red", "green", "blue"], obj="cup") == ["green", "blue"]
    assert toy.texts[:3] == ["a photo of a red cup", "a photo of a red-colored cup", "a photo of a red object"]
    assert len(toy.texts) == 9
    toy.classify(crops, ["red", "green", "blue"], obj="cup")  # head cached per (object, colours)
    assert len(toy.texts) == 9
    # each template embedding is normalised before averaging: the head rows are unit axes
    assert torch.allclose(toy.head("cup", ("red", "green", "blue")), torch.eye(3))
    assert len(GENEVAL_COLORS) == 10 and len(TEMPLATES) == 3


def test_clip_loads_from_a_local_folder(tokenizer_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel

    cfg = CLIPConfig(text_config=dict(vocab_size=len(WORDS), max_position_embeddings=32, eos_token_id=3,
                                      bos_token_id=2, pad_token_id=0, **_tiny_layers()),
                     vision_config=dict(image_size=32, patch_size=16, **_tiny_layers()), projection_dim=8)
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(tmp_path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    color = Backends(BackendsConfig(color="clip", color_path=str(tmp_path), device="cpu")).color
    crops = [Image.new("RGB", (20, 30), (255, 0, 0)), Image.new("RGB", (20, 30), (0, 0, 255))]
    first = color.classify(crops, ["red", "blue", "green"], obj="cup")
    assert len(first) == 2 and set(first) <= {"red", "blue", "green"}
    assert color.classify(crops, ["red", "blue", "green"], obj="cup") == first  # deterministic
    assert color.classify(crops[:1], ["green"]) == ["green"]


def test_open_clip_missing_package_is_clear(tmp_path: Path) -> None:
    if importlib.util.find_spec("open_clip") is not None:
        pytest.skip("open_clip is installed here")
    ckpt = tmp_path / "ViT-L-14.pt"
    ckpt.write_bytes(b"x")
    with pytest.raises(ImportError, match="open-clip-torch"):
        _ = Backends(BackendsConfig(color="open_clip", color_path=str(ckpt))).color


# ---------------------------------------------------------------- vqa

def test_blip_loads_from_a_local_folder(tokenizer_dir: Path, tmp_path: Path) -> None:
    from transformers import (
        AutoTokenizer,
        BlipConfig,
        BlipForQuestionAnswering,
        BlipImageProcessor,
        BlipProcessor,
    )

    cfg = BlipConfig(text_config=dict(vocab_size=len(WORDS), max_position_embeddings=32, bos_token_id=5,
                                      pad_token_id=0, sep_token_id=3, encoder_hidden_size=16, **_tiny_layers()),
                     vision_config=dict(image_size=32, patch_size=16, **_tiny_layers()), projection_dim=8)
    torch.manual_seed(0)
    BlipForQuestionAnswering(cfg).save_pretrained(tmp_path)
    BlipProcessor(BlipImageProcessor(size={"height": 32, "width": 32}),
                  AutoTokenizer.from_pretrained(tokenizer_dir)).save_pretrained(tmp_path)
    vqa = Backends(BackendsConfig(vqa="blip", vqa_path=str(tmp_path), device="cpu")).vqa
    image = Image.new("RGB", (20, 30), (255, 0, 0))
    answer = vqa.answer(image, "is there a red cup?")
    assert isinstance(answer, str) and "[DEC]" not in answer and answer == answer.strip()
    assert vqa.answer(image, "is there a red cup?") == answer  # greedy: deterministic


def test_mplug_missing_package_is_clear(tmp_path: Path) -> None:
    if importlib.util.find_spec("modelscope") is not None:
        pytest.skip("modelscope is installed here")
    with pytest.raises(ImportError, match="backend 'mplug' needs the package 'modelscope"):
        _ = Backends(BackendsConfig(vqa="mplug", vqa_path=str(tmp_path))).vqa
