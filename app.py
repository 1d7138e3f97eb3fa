#!/usr/bin/env python3
"""CDK entry point: `cdk synth -c stage=prod`, or plain `python app.py` (same template)."""

from stacks.app import build_app

if __name__ == "__main__":
    build_app().synth()
