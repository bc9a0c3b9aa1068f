"""Sample feeds for the offline demo; read them with importlib.resources.

from importlib.resources import files
sources = tomllib.loads(files("newsletter.samples").joinpath("sources.toml").read_text())
"""
