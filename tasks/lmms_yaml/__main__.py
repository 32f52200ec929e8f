"""`python -m lavida_bench.tasks.lmms_yaml --out DIR TASK=PATH ...` (see the package docstring)."""
import sys

from lavida_bench.tasks.lmms_yaml import main

sys.exit(main())
