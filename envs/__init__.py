"""EdgeSplit: a Gymnasium environment for splitting DNNs and placing the fragments on edge clusters."""
