"""Silence converters that print progress or C++ log lines straight to file descriptors 1 and 2."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_output() -> Iterator[None]:
    """Redirect stdout/stderr (Python and file-descriptor level) to a scratch file for the block.

    If the block raises, the captured text is appended to the exception notes so nothing is lost.
    """
    previous_disable = logging.root.manager.disable
    logging.disable(logging.INFO)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    python_sink = io.StringIO()  # a StringIO, not a file: libraries that keep a reference can still write
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            # Python-level too: rich consoles and print() write to whatever sys.stdout is (pytest, StringIO).
            with contextlib.redirect_stdout(python_sink), contextlib.redirect_stderr(python_sink), \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        except BaseException as exc:
            sink.seek(0)
            text = sink.read().decode(errors="replace") + python_sink.getvalue()
            tail = text.strip().splitlines()[-20:]
            if tail:
                exc.add_note("converter output:\n" + "\n".join(tail))
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            logging.disable(previous_disable)

