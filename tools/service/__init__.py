"""The image service (`images`), its typed requests and outcomes (`requests`), and teaching concepts (`teaching`)."""
