"""accounts.py on its own: no app, no request; a real SQLite file, real keys, a frozen clock."""

import subprocess
import sys
from pathlib import Path


def test_importing_accounts_loads_no_flask():
    code = "import sys, accounts; print(sorted(m for m in sys.modules if m.split('.')[0].startswith('flask')))"
    repo = Path(__file__).parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
