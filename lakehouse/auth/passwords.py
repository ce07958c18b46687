"""argon2id password hashing, bounded so a login storm cannot take all memory or cores."""

from __future__ import annotations

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY

from lakehouse.errors import InvalidInput

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_BYTES = 1024


class Passwords:
    """Hash and verify passwords; at most `parallelism` hashes run at once."""

    def __init__(self, memory_kib: int, time_cost: int, concurrent: int = 2) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=1,
            hash_len=RFC_9106_LOW_MEMORY.hash_len,
            salt_len=RFC_9106_LOW_MEMORY.salt_len,
        )
        self._slots = threading.BoundedSemaphore(concurrent)
        # Verifying against this when the user does not exist makes "unknown user" cost the same
        # time as "wrong password", so timing does not reveal which user names exist.
        self._decoy = self._hasher.hash("decoy password that matches nothing")

    def hash(self, password: str) -> str:
        check_password_strength(password)
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        if len(password.encode()) > MAX_PASSWORD_BYTES:
            password = ""  # still spend the same work below; never matches a real hash
        with self._slots:
            try:
                return self._hasher.verify(stored_hash or self._decoy, password) and (
                    stored_hash is not None
                )
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise InvalidInput(f"passwords may be at most {MAX_PASSWORD_BYTES} bytes")
