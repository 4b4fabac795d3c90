"""How a command fails: the exit codes and the one line that explains why."""

from pydantic import ValidationError

# Exit codes: the operation failed; the command line or the configuration is wrong.
FAILED = 1
USAGE = 2
INTERRUPTED = 130


class CliError(Exception):
    def __init__(self, message: str, *, exit_code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def configuration_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    # Settings are read from environment variables named after the fields.
    variable = ".".join(str(part) for part in first["loc"]).upper()
    problem = f"{variable}: {first['msg']}" if variable else first["msg"]
    others = error.error_count() - 1
    return f"{problem} (and {others} more)" if others else problem
