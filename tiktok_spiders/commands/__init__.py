"""Project commands (``COMMANDS_MODULE``): ``crawl`` with honest exit statuses."""
