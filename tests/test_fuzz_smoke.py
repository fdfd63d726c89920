"""The fuzz run stays runnable; a short pass is part of every test run."""

import importlib.util
from pathlib import Path

from dreams_sms.provider.segments import segments


def test_fuzz_run_finds_nothing_in_a_short_pass(capsys):
    path = Path(__file__).resolve().parents[1] / "bench" / "fuzz.py"
    spec = importlib.util.spec_from_file_location("fuzz", path)
    fuzz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz)
    assert fuzz.main(["--seconds", "1", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    for target in ("parsers", "numbers", "texts", "files"):
        assert target in out


def test_segments_survive_lone_surrogates():
    # Found by the fuzz run: a lone surrogate once raised UnicodeEncodeError.
    assert segments("abc\udb50") == 1
