"""Kept only for webapp/cli.py, which imports the notice from here: the viewer's words are in webapp.text and a
tab's state in webapp.tab. Remove this module once webapp/cli.py imports ``NOTICE`` from webapp.text."""

from .text import NOTICE

__all__ = ["NOTICE"]
