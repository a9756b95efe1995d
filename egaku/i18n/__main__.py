"""`python -m egaku.i18n extract | init LL | check` (see egaku/i18n/extract.py)."""

import sys

from egaku.i18n.extract import main

sys.exit(main(sys.argv[1:]))
