"""Masked-diffusion samplers: pure schedules and decoding loops over a logits function."""
