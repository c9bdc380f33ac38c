"""The clinic's drug list (formulary) and the rules a prescription must pass.

Knows nothing of the clinic application, the card reader or the insurer: plain data in,
plain immutable values out.
"""

from .catalog import Formulary
from .drugs import Drug, load_csv
from .errors import DrugLookupError, FormularyDataError, FormularyError
from .rulebook import RuleBook, RuleSpec, default_rulebook, load_rulebook
from .rules import RxLine, Verdict, blocking, check, warnings

__all__ = [
    "Drug",
    "DrugLookupError",
    "Formulary",
    "FormularyDataError",
    "FormularyError",
    "RuleBook",
    "RuleSpec",
    "RxLine",
    "Verdict",
    "blocking",
    "check",
    "default_rulebook",
    "load_csv",
    "load_rulebook",
    "warnings",
]
