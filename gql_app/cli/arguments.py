"""What every command module needs from argparse: where to add its parser, and argument
types that refuse a bad value with a usage error that says why."""

import argparse
from typing import TypeAlias

# Generic only to the type checker.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def whole_number(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None


def positive_int(raw: str) -> int:
    value = whole_number(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def port_number(raw: str) -> int:
    value = whole_number(raw)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value
