"""The buttons under every result, one file each, dispatched by one restart-safe `ResultButton` (`view.py`)."""
