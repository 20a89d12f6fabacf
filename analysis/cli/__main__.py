"""`python -m sparsespikformer.analysis.cli ...` (as `torchrun -m` launches it)."""

import sys

from sparsespikformer.analysis.cli import main

sys.exit(main())
