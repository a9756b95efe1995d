"""Checks on what comes in before anything is drawn: uploads, prompt languages, caps, the blocklist."""
