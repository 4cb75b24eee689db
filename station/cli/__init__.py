"""The ``station`` command: the only package that prints; one module per group of verbs."""
