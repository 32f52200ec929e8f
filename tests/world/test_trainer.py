"""The world trainer is real: losses fall, and a run writes a loadable release-layout checkpoint."""
from __future__ import annotations

import json
import re
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from lavida_bench.model.checkpoint import load_checkpoint
from lavida_bench.model.tiny import tiny_tokenizer
from lavida_bench.model.tokens import SpecialIds
from lavida_bench.backends.shapes import COLORS
from lavida_bench.model.vq import VQTokenizer, vq_from_config
from lavida_bench.world.micro import WORLD_SIDE, micro_vq_config
from lavida_bench.world.detect import detect
from lavida_bench.world.language import PLAN_PREFIX
from lavida_bench.world.mix import GEN, MIX, TUNE_MIX, corpus, example, trained_as
from lavida_bench.world.run import RunSettings, build_network, train_world, weights_fingerprint
from lavida_bench.world.trainer import WorldTrainer, code_weights, draw_mask, mask_probability
from lavida_bench.world.vqtrain import train_vq

TOOLS = Path(__file__).resolve().parents[2] / "tools"


@pytest.fixture(scope="module")
def trainer() -> WorldTrainer:
    torch.manual_seed(0)
    tokenizer = tiny_tokenizer(corpus(np.random.default_rng(1), WORLD_SIDE, n=50))
    vq = VQTokenizer(vq_from_config(micro_vq_config()))
    vq.model.requires_grad_(False)
    network = build_network(RunSettings(), tokenizer)
    return WorldTrainer(network, vq, tokenizer, SpecialIds.from_tokenizer(tokenizer))


def test_masking_follows_the_release() -> None:
    assert float(mask_probability(torch.tensor(0.0))) == pytest.approx(1e-3)
    assert float(mask_probability(torch.tensor(1.0))) == pytest.approx(1.0)
    gen = torch.Generator().manual_seed(0)
    assert all(draw_mask(4, gen).any() for _ in range(200))  # never nothing to predict


def fixed_loss(trainer: WorldTrainer, batches: list) -> float:
    with torch.no_grad():
        gen = torch.Generator().manual_seed(7)
        return float(sum(trainer.loss(b, gen) for b in batches) / len(batches))


def test_a_few_dozen_steps_lower_the_loss(trainer: WorldTrainer) -> None:
    """Held-out batches of two tasks (text answers and image codes), same masks before and after
    30 training steps on fresh examples. Measured: mean 8.3 -> 2.7 (answers 7.6 -> 0.8, image
    codes 9.0 = ln(8192) -> 4.5); the test asks for a quarter off."""
    rng = np.random.default_rng(0)
    held = [[example(rng, task, WORLD_SIDE, trainer.n_pos) for _ in range(4)] for task in ("understand", "t2i")]
    before = fixed_loss(trainer, held)
    opt = torch.optim.AdamW(trainer.net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(1)
    trainer.net.train()
    for step in range(30):
        batch = [example(rng, ("understand", "t2i")[step % 2], WORLD_SIDE, trainer.n_pos) for _ in range(4)]
        loss = trainer.loss(batch, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    trainer.net.eval()
    after = fixed_loss(trainer, held)
    assert after < 0.75 * before, (before, after)


def test_the_vision_side_learns_at_its_own_rate(trainer: WorldTrainer) -> None:
    """`vision_lr_scale` scales the tower's, resampler's and projector's learning rate only: at 0
    an understanding step (whose gradient reaches the vision side) leaves them exactly as they were."""
    from lavida_bench.world.run import optimizer, training_step
    from lavida_bench.world.vision_pretrain import VISION_PREFIXES

    net = trainer.net
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = optimizer(net, RunSettings(lr=1e-3, vision_lr_scale=0.0))
    rng = np.random.default_rng(4)
    batch = [example(rng, "understand", WORLD_SIDE, trainer.n_pos) for _ in range(4)]
    net.train()
    training_step(opt, trainer, batch, torch.Generator().manual_seed(0), 1e-3)
    net.eval()
    grads = {n: p.grad is not None and bool(p.grad.abs().sum() > 0) for n, p in net.named_parameters()}
    vision = [n for n in before if n.startswith(VISION_PREFIXES)]
    assert vision and any(grads[n] for n in vision)  # the vision side did get a gradient
    assert all(torch.equal(before[n], p) for n, p in net.named_parameters() if n in vision)
    assert any(not torch.equal(before[n], p) for n, p in net.named_parameters() if n not in vision)


def test_every_task_builds_a_batch(trainer: WorldTrainer) -> None:
    rng = np.random.default_rng(3)
    gen = torch.Generator().manual_seed(0)
    assert set(MIX) <= set(TUNE_MIX)
    for task in TUNE_MIX:
        batch = [example(rng, task, WORLD_SIDE, trainer.n_pos) for _ in range(2)]
        assert {e.task for e in batch} == {trained_as(task)}
        with torch.no_grad():
            loss = trainer.loss(batch, gen)
        assert torch.isfinite(loss) and float(loss) > 0
    with pytest.raises(ValueError, match="one task"):
        trainer.loss([example(rng, "t2i", WORLD_SIDE, trainer.n_pos), example(rng, "plan", WORLD_SIDE, 0)], gen)


def test_object_codes_weigh_object_weight_times_the_background() -> None:
    codes = torch.tensor([[5, 5, 5, 7], [1, 2, 2, 2]])
    assert code_weights(codes, 10.0).tolist() == [[1, 1, 1, 10], [10, 1, 1, 1]]


@pytest.mark.parametrize("weight", [1.0, 10.0])
def test_the_image_loss_weighs_object_codes(trainer: WorldTrainer, monkeypatch, weight: float) -> None:
    """Every image is 50 background codes (3) and 14 object codes (9); the network favours the
    background by 5 nats. The two complementary copies mask every code exactly once, so the loss
    is the weighted mean over all 64 codes, whatever the masks drawn."""
    assert trainer.side == 8
    codes = torch.tensor([3] * 50 + [9] * 14)[None]
    logits = torch.zeros(1, 64, trainer.net.config.codebook_size)
    logits[..., 3] = 5.0
    weighted = WorldTrainer(trainer.net, trainer.vq, trainer.tokenizer, trainer.ids, object_weight=weight)
    monkeypatch.setattr(trainer.vq, "encode", lambda images, side: codes.expand(len(images), -1))
    monkeypatch.setattr(trainer.net, "code_logits", lambda hidden, side, at=None: logits.expand(len(hidden), -1, -1))
    batch = [example(np.random.default_rng(i), "t2i", WORLD_SIDE, trainer.n_pos) for i in range(2)]
    with torch.no_grad():
        loss = float(weighted.loss(batch, torch.Generator().manual_seed(0)))
    norm = np.log(8191 + np.exp(5.0))
    assert loss == pytest.approx((50 * (norm - 5) + weight * 14 * norm) / (50 + weight * 14), rel=1e-5)
    with pytest.raises(ValueError, match="object_weight"):
        WorldTrainer(trainer.net, trainer.vq, trainer.tokenizer, trainer.ids, object_weight=0.0)


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_object_masks_hide_every_object_code_from_the_first_copy(trainer: WorldTrainer, monkeypatch,
                                                                  rate: float) -> None:
    """Images of 50 background codes (3) and 14 object codes (9). With `object_masks` 1 the first
    copy of each example must draw every object code (the second sees them all); with 0 the masks
    are the release's, and seeded they leave object codes visible in both copies."""
    codes = torch.tensor([3] * 50 + [9] * 14)[None]
    fed: list[torch.Tensor] = []
    masking = WorldTrainer(trainer.net, trainer.vq, trainer.tokenizer, trainer.ids, object_masks=rate)
    monkeypatch.setattr(trainer.vq, "encode", lambda images, side: codes.expand(len(images), -1))
    real_embed = trainer.net.embed_codes
    monkeypatch.setattr(trainer.net, "embed_codes", lambda noisy, side: fed.append(noisy) or real_embed(noisy, side))
    batch = [example(np.random.default_rng(i), "t2i", WORLD_SIDE, trainer.n_pos) for i in range(3)]
    with torch.no_grad():
        masking.loss(batch, torch.Generator().manual_seed(0))
    mask_id = trainer.net.config.vq_mask_id
    first, second = fed[0][:3], fed[0][3:]
    assert ((first == mask_id) != (second == mask_id)).all()  # still complementary copies
    objects_hidden = (first[:, 50:] == mask_id).all(1)
    assert objects_hidden.all() if rate == 1.0 else not objects_hidden.any()
    with pytest.raises(ValueError, match="object_masks"):
        WorldTrainer(trainer.net, trainer.vq, trainer.tokenizer, trainer.ids, object_masks=1.5)


def test_initial_weights_scale_projections_by_their_fan_in() -> None:
    """Projections get std 1 / sqrt(3 fan_in) (PyTorch's nn.Linear variance), embedding tables the
    release's 0.02, norm scales one; the same seed gives the same weights."""
    tokenizer = tiny_tokenizer(corpus(np.random.default_rng(1), WORLD_SIDE, n=50))
    net, again = (build_network(RunSettings(seed=3), tokenizer) for _ in range(2))
    params = dict(net.named_parameters())
    expected = {"model.transformer.blocks.0.q_proj.weight": (3 * 128) ** -0.5,  # Linear 128 -> 128
                "model.transformer.blocks.0.ff_out.weight": (3 * 256) ** -0.5,  # Linear 256 -> 128
                "model.transformer.blocks.0.q_proj_vision.weight": (3 * 64) ** -0.5,  # Linear 64 -> 128
                "model.upsample_gen.upsample.conv.weight": (3 * 64 * 4) ** -0.5,  # ConvTranspose2d 64 -> 64, 2x2
                "model.transformer.wte.weight": 0.02,
                "model.gen_embedding.0.weight": 0.02}
    for name, std in expected.items():
        assert float(params[name].detach().std()) == pytest.approx(std, rel=0.06), name
    assert bool((params["model.transformer.blocks.0.attn_norm.weight"] == 1).all())
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), again.parameters()))


def test_the_vq_learns_to_reconstruct_world_images() -> None:
    """Measured (seed 0, 40 steps): weighted reconstruction L1 0.71 at step 1, 0.20 at step 40
    (random code maps 0.73 -> 0.29); the encoder puts 0% of positions on their patch's code at
    step 1 and 32% at step 40 (100% by step 2,000 of the full stage)."""
    logged: list[dict[str, float]] = []
    vq = train_vq(0, 40, log=lambda step, values: logged.append(values))
    assert len(logged) == 40 and vq.codebook_size == 8192
    assert max(v["vq_recon"] for v in logged[-5:]) < 0.3 * logged[0]["vq_recon"], logged
    assert max(v["vq_random"] for v in logged[-5:]) < 0.5 * logged[0]["vq_random"], logged
    assert logged[-1]["vq_code_acc"] > 0.25 > logged[0]["vq_code_acc"], logged


def test_the_codebook_is_the_worlds_patch_vocabulary() -> None:
    """Every rendered scene's patches are in the vocabulary (exactly), the active codes are the
    vocabulary's, and the quantiser never picks a parked code."""
    from lavida_bench.world.vqtrain import nearest_patch, patch_vocabulary, patches, set_codebook, world_batch

    rng = np.random.default_rng(0)
    vocab = patch_vocabulary(rng, 500)
    assert 100 < len(vocab) < 1000, len(vocab)
    x = world_batch(rng, 20)
    codes = nearest_patch(vocab, x)
    assert torch.equal(vocab[codes], patches(x))
    model = vq_from_config(micro_vq_config())
    vectors = set_codebook(model, vocab)
    table = model.quantize.embedding.weight
    assert torch.equal(table[: len(vocab)], vectors) and bool((table[len(vocab):] > 1e3).all())
    latents = vectors[codes].view(20, 8, 8, -1).permute(0, 3, 1, 2)
    _, _, (_, _, picked) = model.quantize(latents)
    assert bool((picked < len(vocab)).all())


def test_a_run_writes_a_loadable_checkpoint(tmp_path: Path) -> None:
    settings = TINY_RUN
    record = train_world(settings, tmp_path / "run", command="test")
    ck = load_checkpoint(tmp_path / "run" / "checkpoint")
    assert ck.config.d_model == 128 and ck.vq.codebook_size == ck.config.codebook_size == 8192
    assert record["fingerprint"]["checkpoint"] == weights_fingerprint(tmp_path / "run" / "checkpoint")
    assert json.loads((tmp_path / "run" / "train.json").read_text())["settings"]["seed"] == 5
    lines = [json.loads(x) for x in (tmp_path / "run" / "loss.jsonl").read_text().splitlines()]
    assert [x["stage"] for x in lines] == ["vq"] * 3 + ["vision"] * 2 + ["network"] * 4
    assert load_checkpoint(tmp_path / "run" / "early").config.d_model == 128
    size = sum(p.stat().st_size for p in (tmp_path / "run" / "checkpoint").rglob("*.safetensors"))
    assert size < 25 * 2**20, size
    with pytest.raises(FileExistsError, match="already holds"):
        train_world(settings, tmp_path / "run")


TINY_RUN = RunSettings(seed=5, vq_steps=3, vision_steps=2, steps=4, early_step=2, text_batch=2, image_batch=2)


def test_continuing_a_run_gives_the_one_commands_weights(tmp_path: Path) -> None:
    """The tuning stage over a finished run's saved weights equals the one long command's: what
    the shipped weights' train.json claims when they were tuned with --continue-from."""
    tuned = replace(TINY_RUN, tune_steps=3, tune_lr=1e-3)
    whole = train_world(tuned, tmp_path / "whole")
    train_world(TINY_RUN, tmp_path / "base")
    continued = train_world(tuned, tmp_path / "continued", continue_from=tmp_path / "base")
    assert continued["fingerprint"] == whole["fingerprint"]
    assert weights_fingerprint(tmp_path / "continued" / "checkpoint") != weights_fingerprint(tmp_path / "base" / "checkpoint")
    assert continued["continued_from"]["fingerprint"]["checkpoint"] == weights_fingerprint(tmp_path / "base" / "checkpoint")
    lines = [json.loads(x) for x in (tmp_path / "whole" / "loss.jsonl").read_text().splitlines()]
    assert [x["stage"] for x in lines] == ["vq"] * 3 + ["vision"] * 2 + ["network"] * 4 + ["tune"] * 3
    assert load_checkpoint(tmp_path / "continued" / "checkpoint").provenance["trained_steps"] == 7

    with pytest.raises(ValueError, match=r"\['lr'\] differ"):
        train_world(replace(tuned, lr=1e-3), tmp_path / "other", continue_from=tmp_path / "base")
    with pytest.raises(ValueError, match="already tuned"):
        train_world(tuned, tmp_path / "again", continue_from=tmp_path / "whole")
    with pytest.raises(ValueError, match="tune_steps > 0"):
        train_world(TINY_RUN, tmp_path / "none", continue_from=tmp_path / "base")
    record = json.loads((tmp_path / "base" / "train.json").read_text())
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "train.json").write_text(json.dumps({"settings": {**record["settings"], "depth": 3}}))
    with pytest.raises(ValueError, match=r"missing \['fingerprint'\], unknown settings \['depth'\]"):
        train_world(tuned, tmp_path / "from_odd", continue_from=tmp_path / "odd")
    (tmp_path / "base" / "checkpoint" / "model-00001-of-00002.safetensors").write_bytes(b"changed")
    with pytest.raises(ValueError, match="differ from the fingerprint"):
        train_world(tuned, tmp_path / "changed", continue_from=tmp_path / "base")


def test_the_command_line_refuses_bad_settings(tmp_path: Path, capsys) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_world", TOOLS / "train_world.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path / "x"), "--steps", "10", "--early-step", "10"]) == 2
    assert "early_step" in capsys.readouterr().err


def test_the_recorded_command_reproduces_the_settings() -> None:
    """provenance.json's command, run through the tool's own parser, gives the same settings."""
    import importlib.util
    import shlex

    from lavida_bench.world.run import provenance

    spec = importlib.util.spec_from_file_location("train_world", TOOLS / "train_world.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    settings = RunSettings(seed=3, steps=50, early_step=7, lr=1e-3, warmup=5, vision_lr_scale=0.2, weight_decay=0.0,
                           vision_target="words", mix="ground=0.25,t2i=0.75",
                           phases="color_qa=1@5 judge=0.5,plan=0.5@3", tune_steps=20, tune_lr=3e-4)
    args = module.parse(shlex.split(provenance(settings, 50)["command"])[2:])
    assert module.settings_from(args) == settings


def test_the_mix_setting_gives_the_first_stages_shares_in_order() -> None:
    """The default is MIX itself (the shipped weights' draws, which depend on the order); any
    other mix is checked entry by entry."""
    from lavida_bench.world.run import stages

    assert list(stages(RunSettings())[0].mix.items()) == list(MIX.items())
    assert list(stages(RunSettings(mix="ground=0.3, t2i=0.7"))[0].mix.items()) == [("ground", 0.3), ("t2i", 0.7)]
    for bad, why in [("ground=0.5,t2i=0.4", "sum to 0.9, expected 1"), ("grounding=1", "'grounding=1'"),
                     ("ground=0.5,ground=0.5", "'ground=0.5'"), ("ground=-1,t2i=2", "'ground=-1'"),
                     ("ground", "'ground'"), ("ground=half,t2i=0.5", "'ground=half'")]:
        with pytest.raises(ValueError, match=why):
            RunSettings(mix=bad)


def test_phases_run_between_the_first_and_the_tuning_stage_each_with_its_own_streams() -> None:
    from lavida_bench.world.run import later_stages, stages, total_steps

    settings = RunSettings(steps=100, early_step=10, phases="color_qa=1@30 ground=0.5,judge=0.5@20", tune_steps=40)
    got = [(s.name, s.mix, s.steps, s.before) for s in stages(settings)]
    assert got[1:] == [("phase1", {"color_qa": 1.0}, 30, 100), ("phase2", {"ground": 0.5, "judge": 0.5}, 20, 130),
                       ("tune", TUNE_MIX, 40, 150)]
    assert len({s.seed for s in stages(settings)}) == 4 and total_steps(settings) == 190
    assert [s.name for s in later_stages(settings, continued=False)] == ["phase1", "phase2", "tune"]
    assert [s.name for s in later_stages(settings, continued=True)] == ["tune"]
    assert total_steps(RunSettings(steps=100, early_step=10)) == 100
    for bad in ("color_qa=1", "color_qa=1@0", "color_qa=1@x", "colour=1@5", "ground=0.5@5"):
        with pytest.raises(ValueError, match="phase|mix"):
            RunSettings(phases=bad)


def test_the_tune_mix_setting_gives_the_tuning_stages_shares() -> None:
    """The default is TUNE_MIX in its order (earlier runs' draws); a run's train.json from
    before the setting existed reads back with it; any other mix is checked as `mix` is."""
    from lavida_bench.world.run import stages

    tuned = RunSettings(steps=100, early_step=10, tune_steps=40)
    assert list(stages(tuned)[-1].mix.items()) == list(TUNE_MIX.items())
    recorded = {k: v for k, v in asdict(tuned).items() if k != "tune_mix"}
    assert RunSettings(**recorded) == tuned
    custom = replace(tuned, tune_mix="planned_edit=0.25,plan_edit=0.25,t2i=0.5")
    assert stages(custom)[-1].mix == {"planned_edit": 0.25, "plan_edit": 0.25, "t2i": 0.5}
    assert "--tune-mix planned_edit=0.25,plan_edit=0.25,t2i=0.5" in " ".join(custom.cli_args())
    with pytest.raises(ValueError, match="sum to 0.9"):
        replace(tuned, tune_mix="t2i=0.9")


def test_color_qa_examples_are_colour_questions_with_a_colour_for_answer() -> None:
    rng = np.random.default_rng(4)
    for _ in range(20):
        ex = example(rng, "color_qa", WORLD_SIDE, 0)
        assert "What color is the" in ex.prompt and ex.answer in COLORS and trained_as("color_qa") == "understand"


def test_planned_t2i_examples_always_carry_the_layout_of_their_target() -> None:
    """`planned_t2i` is `t2i` with the plan always in the assistant turn; plain `t2i` mixes both."""
    rng = np.random.default_rng(5)
    planned = [example(rng, "planned_t2i", WORLD_SIDE, 16) for _ in range(12)]
    for ex in planned:
        assert ex.plan and ex.task == "t2i" and ex.target is not None
        assert PLAN_PREFIX in ex.prompt and ex.prompt.count(GEN) == 16
        drawn = sorted(f"{o.color} {o.kind}" for o in detect(ex.target))  # the target's objects, by the strict detector
        assert sorted(re.findall(r"<box_p> (.*?) </box_p>", ex.prompt)) == drawn
    assert trained_as("planned_t2i") == "t2i"
    assert {example(rng, "t2i", WORLD_SIDE, 16).plan for _ in range(20)} == {True, False}


def test_plain_t2i_examples_never_carry_a_plan() -> None:
    """`plain_t2i` is `t2i` with the assistant turn holding only the image placeholders."""
    rng = np.random.default_rng(6)
    for ex in (example(rng, "plain_t2i", WORLD_SIDE, 16) for _ in range(12)):
        assert not ex.plan and ex.task == "t2i" and ex.target is not None and detect(ex.target)
        assert PLAN_PREFIX not in ex.prompt and "<box_p>" not in ex.prompt and ex.prompt.count(GEN) == 16
    assert trained_as("plain_t2i") == "t2i"


def test_planned_edits_carry_the_plan_their_planning_task_answers() -> None:
    """`plan_edit` answers an edit's plan from the source image and instruction (the release's
    `create_plan_edit` prompt); `planned_edit` is `edit` with that plan before the placeholders."""
    plan_task = example(np.random.default_rng(8), "plan_edit", WORLD_SIDE, 16)
    drawn = example(np.random.default_rng(8), "planned_edit", WORLD_SIDE, 16)
    assert trained_as("plan_edit") == "plan" and trained_as("planned_edit") == "edit"
    assert plan_task.task == "plan" and len(plan_task.images) == 1 and plan_task.target is None
    assert "Please first think and plan the layout in LOC format." in plan_task.prompt
    assert plan_task.answer.startswith("Sure I should consider ") and "<LOC_BEGIN>" in plan_task.answer
    assert drawn.task == "edit" and drawn.plan and drawn.source is not None
    assert drawn.prompt.count(GEN) == 16 and re.search(r"</box_p><LOC_BEGIN>(<LOC_\d+>){4}<LOC_END>" + re.escape(GEN),
                                                         drawn.prompt)
    assert not example(np.random.default_rng(8), "edit", WORLD_SIDE, 16).plan


def test_complementary_masking_predicts_every_answer_token_once(trainer) -> None:
    """Each example with its mask and the mask's complement (the release code's `do_inv` default)."""
    rng = np.random.default_rng(7)
    examples = [example(rng, "understand", WORLD_SIDE, trainer.n_pos) for _ in range(6)]
    enc = trainer.encode_text(examples, torch.Generator().manual_seed(3))
    rows = iter(zip(enc.rows, enc.targets, enc.where))
    for ex in examples:
        _, slots, answer = trainer.answer_row(ex, trainer.example_features([ex])[0])
        predicted: dict[int, int] = {}
        while len(predicted) < len(answer):
            row, targets, where = next(rows)
            for pos, tok in zip(where.tolist(), targets.tolist()):
                assert pos not in predicted  # never a target twice
                assert row.ids[pos] == trainer.ids.mask
                predicted[pos] = tok
        assert predicted == dict(zip(slots.tolist(), answer.tolist()))
    assert next(rows, None) is None


def test_without_padding_targets_only_the_answer_and_its_eot_are_predicted(trainer) -> None:
    """`padding=False` (the first `padding_from` steps): the EOS padding is masked in the input as
    before but never a target; every other answer token still is, exactly once."""
    rng = np.random.default_rng(11)
    examples = [example(rng, "understand", WORLD_SIDE, trainer.n_pos) for _ in range(6)]
    enc = trainer.encode_text(examples, torch.Generator().manual_seed(5), padding=False)
    targets = torch.cat(enc.targets)
    assert not bool((targets == trainer.ids.eos).any())
    expected = sum(len(trainer.tokenizer(e.answer).input_ids) + 1 for e in examples)  # + <|eot_id|>
    assert len(targets) == expected
    assert int((targets == trainer.ids.eot).sum()) == len(examples)


def test_padding_targets_join_at_padding_from() -> None:
    from lavida_bench.world.run import RunSettings, padding_targets

    settings = RunSettings(steps=1000, padding_from=300)
    assert [padding_targets(settings, s) for s in (1, 299, 300, 1000)] == [False, False, True, True]


def test_random_code_maps_place_each_codes_patch_where_it_stands() -> None:
    from lavida_bench.world.vqtrain import nearest_patch, patch_vocabulary, random_code_maps

    vocab = patch_vocabulary(np.random.default_rng(0), 300)
    codes, pixels = random_code_maps(np.random.default_rng(1), vocab, 3, 8)
    assert codes.shape == (3, 64) and pixels.shape == (3, 3, 64, 64)
    assert torch.equal(nearest_patch(vocab, pixels), codes)  # each patch is its code's, exactly


def test_object_pixels_weigh_more_than_the_background() -> None:
    from lavida_bench.world.vqtrain import OBJECT_PIXEL_WEIGHT, object_pixel_weights

    x = torch.full((1, 3, 4, 4), 0.5)
    x[0, 0, 1, 2] = 0.9  # one pixel of another colour
    expected = torch.ones(1, 1, 4, 4)
    expected[0, 0, 1, 2] = OBJECT_PIXEL_WEIGHT
    assert torch.equal(object_pixel_weights(x), expected)


def test_the_micro_model_decodes_text_in_the_layout_it_is_trained_in(trainer: WorldTrainer, captured_logits_fn) -> None:
    """The trainer runs prompt and masked answer in one bidirectional pass (the release's training
    without `--prefix_lm`); the micro pipeline's text decoder (`PREFIX_LM`) must compute the very
    same answer logits, or the shipped model answers from a context it never saw (a prompt cache
    moved its logits by up to 10 nats; docs/benchmarks.md)."""
    from lavida_bench.model.checkpoint import Checkpoint, KeyReport
    from lavida_bench.model.pipeline import LavidaPipeline
    from lavida_bench.model.sequences import Row
    from lavida_bench.world.micro import PREFIX_LM

    net, mask = trainer.net.eval(), trainer.ids.mask
    ex = example(np.random.default_rng(5), "understand", WORLD_SIDE, trainer.n_pos)
    feats = trainer.example_features([ex])[0]
    row, slots, _ = trainer.answer_row(ex, feats)
    ids = list(row.ids)
    for pos in slots.tolist():
        ids[pos] = mask
    with torch.no_grad():
        batch = trainer.builder.batch([Row(ids, row.features)])
        trained = net.text_logits(net(batch.embeds, valid=batch.valid)[0][0, slots]).float()
    ck = Checkpoint(net, trainer.vq, trainer.tokenizer, trainer.ids, net.config, KeyReport(), Path("micro"))
    pipe = LavidaPipeline(ck, resolution=WORLD_SIDE, prefix_lm=PREFIX_LM)
    with torch.no_grad():
        pipe.text.decode([trainer.builder.row(ex.prompt, feats)], len(slots), len(slots), 0.0, [0])
        decoded = captured_logits_fn["fn"](torch.full((1, len(slots)), mask))[0]
    torch.testing.assert_close(decoded, trained, rtol=1e-4, atol=1e-4)
