"""Pipeline verbs, one module each: `python -m scripts.<verb>`."""
