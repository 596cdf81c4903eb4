"""Which block a traced layer belongs to.

The rule, applied to the ``nn_module_stack`` that torch.fx records for every
node (the chain of modules the tracer was inside, outermost first):

1. the block is the outermost module in the stack whose parent is a container
   (``nn.Sequential``, ``nn.ModuleList`` or ``nn.ModuleDict``): ``layer1.0``
   for a ResNet residual block (a child of the ``layer1`` Sequential),
   ``features.3`` for a MobileNetV2 inverted-residual block, ``branches.2``
   for a SplitPlace semantic branch;
2. failing that, the outermost module of the stack, i.e. a direct child of the
   root (``conv1`` of a ResNet stem, ``fc``);
3. a node recorded outside every submodule (the input, or a functional
   ``torch.flatten`` in the root's ``forward``) is its own block, named after
   the node.

Everything a residual block computes, including its addition, therefore falls
in one block.
"""

from __future__ import annotations

from torch import fx, nn

CONTAINER_TYPES = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
"""Module types whose children are taken to be blocks."""


def block_of(node: fx.Node, root: nn.Module) -> str:
    """The block name of ``node`` traced from ``root``, by the rule of this module's docstring."""
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return node.name
    paths = [path for path, _module_type in stack.values()]
    for path in paths:
        parent_path = path.rpartition(".")[0]
        if isinstance(root.get_submodule(parent_path), CONTAINER_TYPES):
            return path
    return paths[0]
