"""The simulated edge cluster: device catalog, bandwidth traces and the parts built on them."""
