"""python -m tapeshared."""

import sys

from tapeshared.cli import main

sys.exit(main())
