"""`import mekit` and `mekit --help` must stay cheap: no heavy library at import time.
(The timing itself is measured in benchmarks/startup.py, not asserted here.)"""

import subprocess
import sys

HEAVY = ["torch", "cv2", "mediapipe", "pandas", "sklearn", "matplotlib", "scipy", "av", "flaml", "lightgbm"]


def test_cli_import_loads_no_heavy_library():
    code = ("import sys, mekit, mekit.cli.main; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported at startup: {out.stdout.strip()}"


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "mekit", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for cmd in ("run", "evaluate", "data"):
        assert cmd in out.stdout
