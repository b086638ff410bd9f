"""The plugin module named by the entry point: what plait-swish adds to Plait's registry."""

from plait.core import hookimpl
from plait.zoo import ModelCatalog

from .layer import BetaSwish

# --8<-- [start:hooks]
models = ModelCatalog()
# a preset of the zoo's mlp architecture whose activation is our layer, by its registry name
models.register_preset("swish-mlp-digits", "mlp", "an MLP with BetaSwish for 8x8 digits",
                       sizes=[64, 128, 10], activation="beta_swish")


@hookimpl
def register_layers(register):
    register("beta_swish", BetaSwish)


@hookimpl
def register_models(register):
    models.contribute(register)
# --8<-- [end:hooks]
