"""Make `ansible_collections.cloudvirt.platform` importable from a checkout
(`make venv` links the checkout under .build/collections)."""
import sys
from pathlib import Path

COLLECTIONS = Path(__file__).resolve().parents[2] / ".build" / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
