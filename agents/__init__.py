"""Agents that act on the EdgeSplit environments through the Gymnasium API."""
