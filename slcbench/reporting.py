"""Rich tables and plots for people; files for machines are written through ``slcbench.io``."""

from __future__ import annotations

# ---- speed (issue 2) -------------------------------------------------------------------------

# ---- evaluate (issue 3) ----------------------------------------------------------------------

# ---- compare (issue 5) -----------------------------------------------------------------------
