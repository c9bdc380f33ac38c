"""The clinic's drug list (formulary) and the rules a prescription must pass.

Knows nothing of the clinic application, the card reader or the insurer: plain data in,
plain immutable values out.
"""

from .catalog import Formulary
from .diagnoses import Diagnosis, DiagnosisList
from .diff import DrugChange, FieldChange, FormularyDiff, diff
from .drugs import Drug, load_csv
from .errors import DrugLookupError, FormularyDataError, FormularyError
from .rulebook import RuleBook, RuleSpec, default_rulebook, load_rulebook
from .rules import PriorSupply, RxLine, Verdict, blocking, check, warnings

__all__ = [
    "Diagnosis",
    "DiagnosisList",
    "Drug",
    "DrugChange",
    "DrugLookupError",
    "FieldChange",
    "Formulary",
    "FormularyDataError",
    "FormularyDiff",
    "FormularyError",
    "PriorSupply",
    "RuleBook",
    "RuleSpec",
    "RxLine",
    "Verdict",
    "blocking",
    "check",
    "default_rulebook",
    "diff",
    "load_csv",
    "load_rulebook",
    "warnings",
]
