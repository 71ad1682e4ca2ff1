"""`python -m node.cli`: the same as the media-node console script."""

from . import main

main()
