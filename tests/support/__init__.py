"""What the tests share that is not a fixture: builders, hostile-input strategies, databases made
beside the suite's, real server processes and the CLI. Test modules import from here, never
from each other (or from conftest.py, which holds the fixtures)."""
