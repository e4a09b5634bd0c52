"""The clause list of the format, for the validator: it lives in :mod:`neural_format.clauses`, a
leaf module, so that the error table (:mod:`neural_format.error_codes`) can read it too."""
from ..clauses import CLAUSES, SEVERITIES, Clause  # noqa: F401 (re-exported)
