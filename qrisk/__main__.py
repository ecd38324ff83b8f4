import sys

from qrisk.cli import main

sys.exit(main())
