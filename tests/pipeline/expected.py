"""The prompt strings of the release, written out by hand from the official code (LaVida-O
`llava/eval/predict_t2i_edit.py`, `llava/eval/predict_grounding.py`, `llava/conversation.py`) and the prompts
printed in its `Demo.ipynb` cells 6 and 11 (not from lavida_bench.model.prompts), so the pipeline's prompts
are checked against an independent transcription."""
from __future__ import annotations

# conversation.py:416-428: the "llada" system text, verbatim.
SYSTEM = ("You are a helpful language and vision assistant. You are able to understand the visual content "
          "that the user provides, and assist the user with a variety of tasks using natural language.")
HEAD = "<|startoftext|><|start_header_id|>system<|end_header_id|>\n\n" + SYSTEM + "<|eot_id|>"
USER = "<|start_header_id|>user<|end_header_id|>\n\n"
ASSISTANT = "<|start_header_id|>assistant<|end_header_id|>\n\n"
EOT = "<|eot_id|>"
GEN = "<|reserved_token_5|>"  # predict_t2i_edit.py:187-189: one per generated-image position
SRC = "<|reserved_token_6|>"  # predict_t2i_edit.py:187-189: one per source-image VQ position
# llava/eval/1024_eval.yaml micro_cond, at 64 px: the demo preset keeps the trailing semicolon.
MICRO_64 = "ORIGINAL WIDTH : 64; ORIGINAL HEIGHT : 64; TOP : 0; LEFT : 0; SCORE : 7.110;"


def chat(user: str, assistant: str | None = None) -> str:
    """conversation.py:110-122: each turn's content is stripped, and the generation header is ALWAYS appended."""
    text = HEAD + USER + user.strip() + EOT
    if assistant is not None:
        text += ASSISTANT + assistant.strip() + EOT
    return text + ASSISTANT


def t2i(caption: str, n_pos: int, plan: str = "", feedback: list[str] = ()) -> str:
    """predict_t2i_edit.py:209-219 T2I layout; reflection appends the feedback block after two spaces."""
    user = "Generate an image with the caption:\n " + caption + " " + MICRO_64
    if feedback:
        user += ("  Please also consider past generations and their feedbacks. Do not repeat these errors "
                 + "\n".join(f"Generation {i}: <image>\n Feedback {i}: {t}" for i, t in enumerate(feedback, 1)))
    return chat(user, plan + GEN * n_pos)


def edit(instruction: str, n_pos: int, plan: str = "") -> str:
    """predict_t2i_edit.py:221-264 editing layout (micro-conditions forced empty, :207-208)."""
    return chat("<image> " + SRC * n_pos + "\n " + instruction + " ", plan + GEN * n_pos)


def grounding(expression: str) -> str:
    """predict_grounding.py:57-101 RefCOCO prompt: leading apostrophe, four masks, no trailing generation header."""
    return ("'<|startoftext|><|start_header_id|>system<|end_header_id|>\n\n" + SYSTEM
            + "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n<image>\n Please locate " + expression
            + " in this image. Give bounding boxes in LOC format.<|eot_id|><|start_header_id|>assistant"
            "<|end_header_id|>\n\n<LOC_BEGIN><|mdm_mask|><|mdm_mask|><|mdm_mask|><|mdm_mask|><LOC_END><|eot_id|>")


def judge(caption: str) -> str:
    """predict_t2i_edit.py:777-808 get_feedback."""
    return chat("<image>\nPlease evaluate this generated image based on the following prompt: " + caption
                + " Focus on text alignment and compositionality.")


def plan_t2i(caption: str) -> str:
    """predict_t2i_edit.py:706-737 create_plan: `{caption} {micro_cond}. Please first think ...` (so `;.` with the demo preset)."""
    return chat("Generate an image with the caption: " + caption + " " + MICRO_64
                + ". Please first think and plan the layout in LOC format.")


def plan_edit(instruction: str) -> str:
    """predict_t2i_edit.py:740-775 create_plan_edit."""
    return chat("<image>\n" + instruction + ". Please first think and plan the layout in LOC format.")


def understand(question: str) -> str:
    """eval/lmms_eval/models/llava_llada.py form: `<image>\\n` + question, no assistant turn."""
    return chat("<image>\n" + question)
