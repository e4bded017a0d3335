import sys
from pathlib import Path

# rt_helpers is shared by this directory and slow/.
sys.path.insert(0, str(Path(__file__).parent))
