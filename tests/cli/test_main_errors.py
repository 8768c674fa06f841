"""The entry point never shows a traceback: user errors exit 2, an interrupt 130, and a fault in
mekit exits 1 with one line and the traceback saved to a file."""

from __future__ import annotations

import pytest

import mekit.cli.main as cli_main
from mekit.errors import DataError


def _call_main(monkeypatch, capsys, exc):
    def boom():
        raise exc

    monkeypatch.setattr(cli_main, "app", boom)
    with pytest.raises(SystemExit) as e:
        cli_main.main()
    return e.value.code, capsys.readouterr().err


def test_user_error_is_one_line_exit_2(monkeypatch, capsys):
    code, err = _call_main(monkeypatch, capsys, DataError("bad row", path="x.csv", row=3))
    assert code == 2 and err.strip() == "error: x.csv, row 3: bad row"


def test_interrupt_is_one_line_exit_130(monkeypatch, capsys):
    code, err = _call_main(monkeypatch, capsys, KeyboardInterrupt())
    assert code == 130 and err.count("\n") == 1 and "interrupted" in err and "Traceback" not in err


def test_internal_fault_is_one_line_and_the_traceback_is_saved(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("MEKIT_DEBUG", raising=False)
    monkeypatch.setenv("MEKIT_CACHE", str(tmp_path))
    code, err = _call_main(monkeypatch, capsys, ValueError("need at least one array\nsecond line"))
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("internal error: ValueError: need at least one array (full traceback in")
    assert "ValueError" in (tmp_path / "last-error.txt").read_text()
    monkeypatch.setenv("MEKIT_DEBUG", "1")
    monkeypatch.setattr(cli_main, "app", lambda: (_ for _ in ()).throw(ValueError("x")))
    with pytest.raises(ValueError):
        cli_main.main()


@pytest.mark.slow
def test_eda_out_that_is_a_file_is_one_line(tmp_path):
    from typer.testing import CliRunner

    f = tmp_path / "file"
    f.write_text("x")
    res = CliRunner().invoke(cli_main.app, ["eda", "synthetic", "--out", str(f)])
    assert res.exit_code != 0 and isinstance(res.exception, DataError)
    assert "is a file, not a folder" in str(res.exception)
