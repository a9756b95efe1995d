"""Installs the loopback guard in every Python subprocess a test starts."""

from loopback import install

install()
