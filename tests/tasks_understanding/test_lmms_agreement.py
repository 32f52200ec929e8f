"""Our MMMU and ChartQA scorers against lmms-eval 0.7.3's own functions on the same predictions.

lmms-eval is the reference implementation for both benchmarks (`tasks/mmmu/utils.py`, `tasks/chartqa/utils.py`;
the LaVida-O repo vendors lmms-eval 0.3.0); its
task utilities import offline (about 10 s, mostly the lmms_eval package itself). The MMMU random
fallback uses Python's global RNG in lmms-eval: we seed it with the seed our scorer records, so
even the fallback must agree.
"""
import json
import random

import lmms_eval.tasks.chartqa.utils as lmms_chartqa  # pinned dependency: a missing one must fail
import lmms_eval.tasks.mmmu.utils as lmms_mmmu
import pytest

from lavida_bench.api import Sample, Variant
from lavida_bench.seeds import sample_seed
from lavida_bench.tasks.chartqa import ChartQA
from lavida_bench.tasks.mmmu import MMMU

MMMU_KWARGS = {"prompt_type": "format",  # lmms-eval mmmu_val.yaml, lmms_eval_specific_kwargs.default
               "multiple_choice_prompt": "Answer with the option's letter from the given choices directly.",
               "open_ended_prompt": "Answer the question using a single word or phrase."}
CHARTQA_KWARGS = {"pre_prompt": "", "post_prompt": "\nAnswer the question with a single word."}

MC_REPLIES = ["(B)", "(A) or (C)", "B", "B.", "Answer: C", "DNA is it", "C.5", "A.x B.y", "D)",
              "I think it must be the option with 2 in it", "The answer is 3 for sure here ok",
              "no idea", "", "  (d)  ", "A B C", "answer is (B) and not C"]
OPEN_REPLIES = ["3", "The answer is 3,000.", "x = 2.5", "red", "It is dark red", "1.5e3", "so the answer is \nblue",
                "three", "3.00", "-2", "R", "the result is 12 and therefore 13", ""]


def lmms_doc(sample: Sample, task: MMMU) -> dict:
    """The lmms-lab row our sample came from, with images as lmms-eval expects them."""
    d = sample.data
    doc = {"id": d["id"], "question": d["question"], "options": repr(d["options"]), "answer": d["answer"],
           "question_type": d["question_type"]}
    for ref in d["images"]:
        doc[ref["column"]] = task.image(sample.id, ref)
    return doc


def test_mmmu_prompts_and_images_agree(mmmu_dir):
    task = MMMU(mmmu_dir)
    for sample in task.load():
        doc = lmms_doc(sample, task)
        request = task.request(sample, Variant("plain"))
        assert request.prompt == lmms_mmmu.mmmu_doc_to_text(doc, MMMU_KWARGS)
        theirs = lmms_mmmu.mmmu_doc_to_visual(doc)
        assert [im.tobytes() for im in request.images] == [im.tobytes() for im in theirs]


def test_mmmu_per_sample_scores_agree(mmmu_dir, ctx):
    task = MMMU(mmmu_dir)
    ours, theirs = [], []
    for sample in task.load():
        doc = lmms_doc(sample, task)
        replies = MC_REPLIES if sample.data["question_type"] == "multiple-choice" else OPEN_REPLIES
        for k, reply in enumerate(replies):
            ctx.seed = k  # a different fallback draw per reply
            score = task.score(sample, {"text": reply}, ctx)
            random.seed(sample_seed(k, "mmmu", sample.id))
            result = lmms_mmmu.mmmu_process_results(doc, [reply])["mmmu_acc"]
            (parsed,) = result["parsed_pred"]
            if sample.data["question_type"] == "multiple-choice":
                assert score["pred"] == parsed, (reply, score)
            else:
                assert score["pred"] == json.dumps(sorted(map(str, parsed))), (reply, score)
            _, acc = lmms_mmmu.evaluate_mmmu([result])
            assert score["correct"] == acc["acc"], (sample.id, reply, score, parsed)
            ours.append(score)
            theirs.append(result)
    assert any(s["rule"] == "random" for s in ours) and any(s["correct"] == 1.0 for s in ours)
    assert {s["rule"] for s in ours} >= {"bracket", "letter_space", "letter_period", "content", "random", "open"}
    overall = lmms_mmmu.mmmu_aggregate_results(theirs)
    assert round(task.aggregate(ours)["acc"].value, 5) == overall


def test_mmmu_aggregation_weights_agree(mmmu_dir, ctx):
    """Subjects of different sizes: both give the instance-weighted overall."""
    task = MMMU(mmmu_dir)
    samples = task.load()
    picks = {"validation_Art_1": "(C)", "validation_Art_2": "(A)", "validation_Math_1": "3",
             "validation_Math_2": "purple", "validation_Physics_1": "(A)", "validation_Physics_2": "(B)"}
    ours = [task.score(s, {"text": picks[s.id]}, ctx) for s in samples]
    theirs = [lmms_mmmu.mmmu_process_results(lmms_doc(s, task), [picks[s.id]])["mmmu_acc"] for s in samples]
    assert round(task.aggregate(ours)["acc"].value, 5) == lmms_mmmu.mmmu_aggregate_results(theirs)


CHART_PAIRS = [("105", "100"), ("95", "100"), ("105.01", "100"), ("62%", "0.62"), ("62%", "62"), ("0", "0"),
               ("0.0", "0"), ("Yes", "yes"), ("14.", "14"), ("Yes.", "Yes"), ("$14", "14"), ("1e2", "100"),
               ("-5", "-5.1"), ("nan", "1"), ("inf", "1"), ("", ""), (" 42", "42"), ("42%%", "0.42")]


@pytest.mark.parametrize("split, lmms_type", [("human", "human_test"), ("augmented", "augmented_test")])
def test_chartqa_per_sample_scores_agree(split, lmms_type, ctx):
    task = ChartQA(None)
    for pred, target in CHART_PAIRS:
        ours = task.score(Sample("x", {"split": split, "answer": target}), {"text": pred}, ctx)
        theirs = lmms_chartqa.chartqa_process_results({"type": lmms_type, "answer": target}, [pred])
        assert theirs == {"relaxed_overall": ours["correct"], f"relaxed_{split}_split": ours["correct"]}, (pred, target)


def test_chartqa_prompts_agree(chartqa_dir):
    task = ChartQA(chartqa_dir)
    for sample in task.load():
        doc = {"question": sample.data["question"]}
        assert task.request(sample, Variant("plain")).prompt == lmms_chartqa.chartqa_doc_to_text(doc, CHARTQA_KWARGS)

