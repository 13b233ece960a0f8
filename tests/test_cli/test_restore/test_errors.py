"""diffir_mm.cli.restore.errors: one-line messages, the counts and the exit status."""
import pytest

from diffir_mm.cli.restore.errors import (EXIT_FAILED, EXIT_OK, Reporter, one_line)


@pytest.mark.parametrize('err,line', [
    (ValueError('\n\n  first line  \nsecond line\n'), 'first line'),
    (RuntimeError(''), 'RuntimeError'),
    (KeyError(), 'KeyError'),
    (OSError(2, 'No such file or directory'), '[Errno 2] No such file or directory'),
])
def test_one_line_is_the_first_non_blank_line(err, line):
    assert one_line(err) == line


def test_reporter_lines_counts_and_exit_status(capsys):
    reporter = Reporter()
    reporter.note('a.png', 'grayscale input')
    reporter.warn('a.png, b.png', 'recomputed in fp32')
    reporter.restored()
    assert reporter.exit_status() == EXIT_OK
    reporter.error('cannot decode image', 'b.png')
    reporter.error('x: no such file or directory')
    assert capsys.readouterr().err.splitlines() == [
        'note: a.png: grayscale input', 'warning: a.png, b.png: recomputed in fp32',
        'error: b.png: cannot decode image', 'error: x: no such file or directory']
    assert (reporter.done, reporter.failed) == (1, 2)
    assert reporter.summary() == 'done: 1 restored, 2 failed'
    assert reporter.exit_status() == EXIT_FAILED


def test_quiet_hides_notes_only(capsys):
    reporter = Reporter(quiet=True)
    reporter.note('a.png', 'grayscale input')
    reporter.warn('a.png', 'recomputed in fp32')
    reporter.error('boom', 'a.png')
    assert capsys.readouterr().err.splitlines() == ['warning: a.png: recomputed in fp32',
                                                    'error: a.png: boom']


def test_messages_go_through_the_progress_bar(capsys):
    class Bar:
        def __init__(self):
            self.lines = []

        def write(self, text, file=None):
            self.lines.append(text)

    reporter = Reporter()
    reporter.bar = Bar()
    reporter.error('boom', 'a.png')
    reporter.note('a.png', 'padded')
    assert reporter.bar.lines == ['error: a.png: boom', 'note: a.png: padded']
    assert capsys.readouterr().err == ''
