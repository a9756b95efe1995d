"""What the bot keeps on disk: the image history, taught concepts, preferences (SQLite, files by content hash)."""
