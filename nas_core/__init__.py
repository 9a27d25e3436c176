"""nasforge search engine: search spaces as data, continuous and discrete search, evaluation.

A library with no web dependencies: it never imports backend/ or worker/.
"""
__version__ = "0.1.0"
