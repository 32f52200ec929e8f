"""The speed suite: latency, throughput, NFE and the hardware floor of every capability, the
optimisations checked against their plain paths, and Lavida-O against its speed baselines.

Entry point for the CLI (`lavida-bench speed --config speed --output DIR`):
`run_speed(cfg: RunConfig | SpeedConfig, output: Path) -> dict`, which writes
`DIR/speed.json` and `DIR/speed.md` and returns the JSON content.
"""
from lavida_bench.speed.suite import run_speed

__all__ = ["run_speed"]
