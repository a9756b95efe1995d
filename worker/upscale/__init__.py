"""The dedicated upscaler: a super-resolution network loaded by spandrel, run in tiles (POST /v1/images/upscales).

`plan.py` checks a request against the settings, torch-free; `network.py` loads and runs the network.
"""
