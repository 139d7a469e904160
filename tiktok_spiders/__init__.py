"""tiktok-spiders: complete, resumable TikTok Research API collections with Scrapy.

The commands are ``tiktok-spiders`` (``cli.py``) and, inside the checkout,
``scrapy``; the README says how a study runs.
"""
