"""Bot features, one module each."""
