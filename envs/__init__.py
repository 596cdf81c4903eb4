"""EdgeSplit: a Gymnasium environment for splitting DNNs and placing the fragments on edge clusters."""

from envs.registration import register_envs

register_envs()
