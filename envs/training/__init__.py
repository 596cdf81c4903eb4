"""Training on the edge: data-parallel re-training (Deep-Edge) and split learning, with background interference.

Plain simulation code, no Gymnasium: ``envs/model_update.py`` wraps it as EdgeModelUpdate-v0.
See ``docs/model_update.md``.
"""
