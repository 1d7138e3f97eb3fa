"""What every operations command gets: the AWS session, the stack (loaded on first use) and the output mode."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from cli.session import Aws
from cli.stack import Stack

DEFAULT_STAGE = "dev"
PROJECT = "mlops"  # stacks.config.PROJECT: the stack of stage S is mlops-S (StageConfig.stack_name)


def stack_name(stage: str) -> str:
    return f"{PROJECT}-{stage}"


@dataclass
class Ops:
    aws: Aws
    stack_name: str
    as_json: bool = False
    _stack: Stack | None = field(default=None, repr=False)

    @property
    def stack(self) -> Stack:
        if self._stack is None:
            self._stack = Stack.load(self.aws, self.stack_name)
        return self._stack

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Ops:
        aws = Aws(profile=args.profile, region=args.region)
        return cls(aws, args.stack or stack_name(args.stage), as_json=args.json)


def add_common(parser: argparse.ArgumentParser) -> None:
    """The options every operations command takes."""
    parser.add_argument("--stage", default=DEFAULT_STAGE, help="the stage whose stack to use (default %(default)s)")
    parser.add_argument("--stack", default=None, help="the stack name (default mlops-<stage>)")
    parser.add_argument("--profile", default=None, help="an AWS profile (default: the usual credential chain)")
    parser.add_argument("--region", default=None, help="the AWS region (default: AWS_DEFAULT_REGION or the profile's)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")
