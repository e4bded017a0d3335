"""The shared strategies the tests are built on (re-exported from the public
module so tests and users generate the same definitions)."""

from saga_models.strategies import fault_models, sagas, well_formed_sagas

__all__ = ["fault_models", "sagas", "well_formed_sagas"]
