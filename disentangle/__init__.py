"""disentangle: a JAX/Flax NNX workbench for disentangled representation learning.

Data flows one way: configs -> datasets (`disentangle.data`) -> methods
(`disentangle.methods`) -> trainer (`disentangle.train`) -> run directory ->
representations (`disentangle.represent`) -> metrics (`metrics`) -> figures and
reports. See docs/DESIGN.md.
"""

__version__ = "0.1.0"
