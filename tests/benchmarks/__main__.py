import os

os.environ["APP_CONFIG"] = "testing"  # before `import app`: its module-level app must not touch instance/ or logs/

from tests.benchmarks.run import main

main()
