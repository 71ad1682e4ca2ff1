"""Board profiles: one TOML file per board class, shipped inside the wheel.

This directory is a (data-only) Python package so `pip install` puts the TOML files
beside the code and `importlib.resources.files("firmware_config")` finds them on a
device with no source checkout. node/profiles.py loads and matches them; nothing
else should read these files directly."""
