"""What a command printed."""

import pytest


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The whole of what a failed command wrote: nothing on stdout, one line on stderr."""
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: ")
    assert err.count("\n") == 1, err
    assert err.endswith("\n")
    assert "Traceback" not in err
    return err.removeprefix("error: ").removesuffix("\n")
