"""``python -m saga_models._fastschema``: write the validator modules again."""

from . import main

main()
