"""Training the VQ tokenizer on the world's images (the first stage of `train-world`).

A network can only learn to draw codes that mean something. The first micro runs trained the VQ
the usual way (autoencoder, then a learned codebook with dead-code restarts): their VQ spread a
flat background over hundreds of near-identical codes (4,700 distinct codes, 7.9 nats of code
entropy on 64 images), and the network's image loss never fell below 6.9. A k-means codebook
over encoder outputs was no better (each code's pixels varied with their neighbours).

The world has few distinct 8x8 pixel patches (objects sit in the cells of a grid, see `scene.GRID`;
about 300 in all), so here the codebook IS the world's patch vocabulary:

1. the vocabulary: every distinct 8x8 patch of VOCAB_SCENES rendered scenes, one code each, its
   codebook vector the patch's coordinates on the vocabulary's leading principal axes; the
   remaining codes of the release's 8192 are parked far away, so the quantiser never picks
   them;
2. the encoder learns to put each patch's latent on its code's vector (MSE), so that the
   quantiser's nearest-code lookup recovers the patch type;
3. the decoder learns to draw the image from the exact code vectors (L1, sharp edges), with
   two changes that the x8 codes of 12 px objects need (docs/benchmarks.md, "The world moves to
   one object per position"): an object's pixels weigh OBJECT_PIXEL_WEIGHT times the
   background's, and each step also decodes a batch of random code maps (every code drawn
   uniformly from the vocabulary), so every patch type is seen as often as the background and
   decoded from its own vector whatever its neighbours. Trained on scenes alone, the x8 decoder
   blurred objects and shifted their colours: the strict detector recovered 28% of objects after
   a round trip.
Encoder and decoder are trained together on fresh scenes. The result is a diffusers VQModel like
any other.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lavida_bench.model.vq import VQTokenizer, vq_from_config
from lavida_bench.world.micro import WORLD_SIDE, micro_vq_config
from lavida_bench.world.scene import sample_scene

PATCH = 8  # pixels per code side (the micro VQ downsamples x8)
VOCAB_SCENES = 3000  # scenes whose patches make the vocabulary
CODE_RADIUS = 3.0  # norm of an active code vector
PARKED = 1e4  # norm of the unused code vectors
OBJECT_PIXEL_WEIGHT = 10.0  # weight of a pixel that differs from its image's background in the decoder's L1


def world_batch(rng: np.random.Generator, n: int, side: int = WORLD_SIDE) -> torch.Tensor:
    """`n` random scenes as a [n, 3, side, side] tensor in [0, 1] (the VQ's input range)."""
    arrs = [np.asarray(sample_scene(rng, side).image(), dtype=np.float32) / 255.0 for _ in range(n)]
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2)


def patches(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] -> [B, H/PATCH * W/PATCH, 3*PATCH*PATCH]: the pixels under each code position."""
    return F.unfold(x, PATCH, stride=PATCH).transpose(1, 2)


def patch_vocabulary(rng: np.random.Generator, n_scenes: int = VOCAB_SCENES) -> torch.Tensor:
    """[K, 3*PATCH*PATCH]: the distinct patches of `n_scenes` rendered scenes, in a fixed order."""
    found = torch.cat([patches(world_batch(rng, 100)).reshape(-1, 3 * PATCH * PATCH)
                       for _ in range(max(1, n_scenes // 100))])
    return torch.unique(found, dim=0)


def nearest_patch(vocab: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """[B, positions]: the vocabulary index of each patch of `x` (exact for rendered scenes)."""
    p = patches(x)
    return torch.cdist(p.reshape(-1, p.shape[-1]), vocab).argmin(1).view(p.shape[:2])


@torch.no_grad()
def set_codebook(model, vocab: torch.Tensor) -> torch.Tensor:
    """The active codes are the vocabulary's patches projected on their leading principal axes
    (so near-identical patches get near-identical vectors and a rare mix-up costs few pixels),
    scaled to a mean norm of CODE_RADIUS; the other codes are parked. Returns the active vectors."""
    table = model.quantize.embedding.weight
    if len(vocab) > table.shape[0]:
        raise ValueError(f"the world has {len(vocab)} patch types, more than the VQ's {table.shape[0]} codes")
    centred = vocab - vocab.mean(0)
    axes = torch.linalg.svd(centred, full_matrices=False).Vh[: table.shape[1]]
    vectors = centred @ axes.T
    vectors *= CODE_RADIUS / vectors.norm(dim=1).mean()
    table.fill_(PARKED)
    table[: len(vocab)] = vectors
    return vectors


def code_map(vectors: torch.Tensor, codes: torch.Tensor, side: int) -> torch.Tensor:
    """Codes [B, side*side] -> their vectors as a latent image [B, dim, side, side]."""
    return vectors[codes].view(codes.shape[0], side, side, -1).permute(0, 3, 1, 2)


def random_code_maps(rng: np.random.Generator, vocab: torch.Tensor, n: int,
                     side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` maps of `side` x `side` codes drawn uniformly from the vocabulary, and their images
    (each code's patch in its place): [n, side*side] codes, [n, 3, side*PATCH, side*PATCH] pixels."""
    codes = torch.from_numpy(rng.integers(len(vocab), size=(n, side * side)))
    pixels = F.fold(vocab[codes].transpose(1, 2), side * PATCH, PATCH, stride=PATCH)  # the inverse of `patches`
    return codes, pixels


def object_pixel_weights(x: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W]: OBJECT_PIXEL_WEIGHT where a pixel differs from its image's most common
    colour (the plain background), 1 elsewhere."""
    background = torch.mode(x.flatten(2), dim=2).values[:, :, None, None]
    differs = (x - background).abs().amax(1, keepdim=True) > 0.02
    return torch.where(differs, OBJECT_PIXEL_WEIGHT, 1.0)


def step_lr(lr: float, step: int, steps: int) -> float:
    """Warm-up over 5% of the steps, then cosine decay to a tenth."""
    warm = min(1.0, step / max(1, 0.05 * steps))
    return lr * warm * (0.1 + 0.45 * (1 + np.cos(np.pi * step / steps)))


def initial_vq(seed: int) -> torch.nn.Module:
    """The VQ stage's model before training, drawn from the global torch generator seeded with
    `seed`: what that generator holds afterwards is what the later stages draw from."""
    torch.manual_seed(seed)
    return vq_from_config(micro_vq_config())


def train_vq(seed: int, steps: int, batch: int = 8, lr: float = 2e-3,
             log: Callable[[int, dict[str, float]], None] | None = None) -> VQTokenizer:
    """A VQ trained for `steps` steps on fresh random scenes; `log(step, values)` sees the losses
    and the share of positions whose code the encoder gets right."""
    rng = np.random.default_rng(seed)
    model = initial_vq(seed).train()
    vocab = patch_vocabulary(rng)
    vectors = set_codebook(model, vocab)
    model.quantize.requires_grad_(False)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    side = WORLD_SIDE // PATCH
    for step in range(1, steps + 1):
        for group in opt.param_groups:
            group["lr"] = step_lr(lr, step, steps)
        x = world_batch(rng, batch)
        codes = nearest_patch(vocab, x)
        target = code_map(vectors, codes, side)
        latents = model.encode(x).latents
        encode = F.mse_loss(latents, target)
        weights = object_pixel_weights(x)
        recon = ((model.decoder(model.post_quant_conv(target)) - x).abs() * weights).sum() / (3 * weights.sum())
        random_codes, random_pixels = random_code_maps(rng, vocab, batch, side)
        random = F.l1_loss(model.decoder(model.post_quant_conv(code_map(vectors, random_codes, side))), random_pixels)
        opt.zero_grad()
        (encode + recon + random).backward()
        opt.step()
        if log is not None:
            with torch.no_grad():
                got = torch.cdist(latents.permute(0, 2, 3, 1).reshape(-1, vectors.shape[1]), vectors).argmin(1)
            log(step, {"vq_recon": float(recon.detach()), "vq_random": float(random.detach()),
                       "vq_encode": float(encode.detach()),
                       "vq_code_acc": float((got == codes.flatten()).float().mean())})
    return VQTokenizer(model.eval())
