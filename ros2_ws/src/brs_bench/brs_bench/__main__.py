"""`python -m brs_bench` (what `make bench` runs): see brs_bench.report."""

from .report import main

raise SystemExit(main())
