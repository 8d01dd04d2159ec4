import os

os.environ["APP_CONFIG"] = "testing"  # any app built without its own settings uses the testing config

from tests.benchmarks.run import main

main()
