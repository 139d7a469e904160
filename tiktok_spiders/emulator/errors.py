"""The emulator's error answers, shared by its endpoints."""

from __future__ import annotations


class ApiError(Exception):
    """An error answer: HTTP status, ``error.code`` and ``error.message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
