import os

os.environ["APP_CONFIG"] = "testing"  # any app built without its own settings uses the testing config

import sys

if sys.argv[1:] == ["files"]:  # the attached files' part alone
    from tests.benchmarks.files import main
else:
    from tests.benchmarks.run import main

main()
