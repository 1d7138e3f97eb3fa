"""The operations commands of ``mlops`` (status, runs, models, approve, reject, rollback, retrain, promote, invoke,
logs, data erase): registered on the ``mlops`` parser, run with one error policy (``cli.errors``: exit codes, one
line on stderr saying what is wrong and what to do)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cli import approve, data, invoke, logs, models, promote, retrain, rollback, runs, status
from cli.context import Ops, add_common
from cli.errors import CliError
from cli.session import explain

MODULES = (status, runs, models, approve, rollback, retrain, promote, invoke, logs, data)
INTERRUPTED = 130


def run(args: argparse.Namespace) -> int:
    """Run the chosen operation; every failure becomes a message and an exit code."""
    operation: Callable[[Ops, argparse.Namespace], int] = args.operation
    try:
        return operation(Ops.from_args(args), args)
    except CliError as error:
        print(f"mlops {args.command}: {error}", file=sys.stderr)
        return error.code
    except (BotoCoreError, ClientError) as error:
        explained = explain(error)
        if explained is None:
            raise
        print(f"mlops {args.command}: {explained}", file=sys.stderr)
        return explained.code
    except KeyboardInterrupt:
        print(f"mlops {args.command}: interrupted (what was started keeps running)", file=sys.stderr)
        return INTERRUPTED


def add_commands(commands: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_common(common)
    for module in MODULES:
        module.add(commands, common)
    parsers = list(commands.choices.values())
    while parsers:  # the commands and their subcommands (``mlops data erase``)
        parser = parsers.pop()
        if parser.get_default("operation") is not None:
            parser.set_defaults(func=run)
        for action in parser._subparsers._group_actions if parser._subparsers else ():
            parsers += list(getattr(action, "choices", {}).values())
