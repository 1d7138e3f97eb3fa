#!/usr/bin/env python3
"""CDK entry point: `cdk synth -c stage=prod`, or plain `python app.py` (same template).

Prints (to stderr, which `cdk synth` shows) each declared dataset's idle endpoint cost per day and the
CloudFormation resources it adds (stacks/footprint.py).
"""

import sys

from stacks.app import build_app
from stacks.footprint import table
from stacks.mlops_stack import MlopsStack

if __name__ == "__main__":
    app = build_app()
    for stack in app.node.children:
        if isinstance(stack, MlopsStack):
            print(table(stack), file=sys.stderr)
    app.synth()
