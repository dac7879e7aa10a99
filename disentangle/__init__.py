"""disentangle: a JAX/Flax NNX workbench for disentangled representation learning.

Data flows one way: configs -> datasets (`disentangle.data`) -> methods
(`disentangle.methods`) -> trainer (`disentangle.train`) -> run directory ->
representations (`disentangle.represent`) -> metrics (`metrics`) -> figures and
reports. See docs/DESIGN.md.
"""

__version__ = "0.1.0"

__all__ = ["load_run", "results"]


def __getattr__(name: str):
    """``disentangle.load_run`` and ``disentangle.results`` (the notebook API,
    :mod:`disentangle.runs`), imported on first use so that ``import disentangle`` stays
    light."""
    if name in __all__:
        from disentangle import runs

        return getattr(runs, name)
    raise AttributeError(f"module 'disentangle' has no attribute {name!r}")
