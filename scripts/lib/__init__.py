"""Libraries the pipeline's verbs and tools share; none is run as `python -m`."""
