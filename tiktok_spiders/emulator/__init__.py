"""A faithful local emulator of the TikTok Research API (the "sandbox").

Start it with ``python -m tiktok_spiders.emulator`` or, from Python, with the
:class:`Emulator` context manager; point a crawl at it with
``TIKTOK_API_BASE_URL``.  Its corpus is deterministic for a seed, so it can say
exactly what a complete crawl must collect (:class:`~.corpus.Corpus`).
"""

from tiktok_spiders.emulator.corpus import Corpus, CorpusConfig
from tiktok_spiders.emulator.faults import Faults
from tiktok_spiders.emulator.server import DEMO_CLIENT_KEY, DEMO_CLIENT_SECRET, Emulator

__all__ = ["DEMO_CLIENT_KEY", "DEMO_CLIENT_SECRET", "Corpus", "CorpusConfig", "Emulator", "Faults"]
