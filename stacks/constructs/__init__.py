"""One construct per concern; stacks/mlops_stack.py wires them together."""
