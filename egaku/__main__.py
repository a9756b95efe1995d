"""python -m egaku"""

from egaku.cli import main

raise SystemExit(main())
