"""Extensions: feeds written from the ledger, progress lines and the closing summary."""
