"""lavida-bench: evaluation and benchmarking harness for Lavida-O."""
__version__ = "0.1.0"
