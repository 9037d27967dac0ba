"""Training code for the demo weights shipped in weights/ (outside the runtime: it imports rsinfer, never the reverse).

Run its scripts from the repository root as modules, e.g. ``python -m train.decloud``; train/README.md says how each
shipped file is regenerated.
"""
