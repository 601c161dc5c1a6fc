"""Moved to :mod:`physguard.training` (``physguard.training.anp``); this module serves the old
import path ``physguard.models.training`` on first use of a name."""


def __getattr__(name: str):
    from ..training import anp

    return getattr(anp, name)
