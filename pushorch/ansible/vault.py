"""Ansible Vault: read files and values `ansible-vault` encrypted (formats 1.1 and 1.2, AES256).

The envelope is a header line `$ANSIBLE_VAULT;1.1;AES256` (1.2 adds `;label`, the vault id) and
the hex of `hex(salt)\\nhex(hmac)\\nhex(ciphertext)`. PBKDF2-HMAC-SHA256 (10,000 rounds) of the
password and salt gives 80 bytes: the AES-256 key, the HMAC-SHA256 key, and the CTR counter's
start. The HMAC of the ciphertext is checked before anything is decrypted; the plaintext is
PKCS#7-padded. All of it with `cryptography`'s primitives.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from pushorch.secret import Secret

HEADER = "$ANSIBLE_VAULT"


class VaultError(ValueError):
    """A vault that cannot be opened: no password given, a wrong one, or a damaged envelope."""


@dataclass(frozen=True, slots=True)
class VaultSecret:
    """One vault password and the vault id it was given for (`default` when none)."""

    label: str
    password: Secret


def is_vault(data: str | bytes) -> bool:
    head = data[: len(HEADER)]
    return (head.decode("ascii", "replace") if isinstance(head, bytes) else head) == HEADER


def decrypt(envelope: str, secrets: Sequence[VaultSecret]) -> str:
    """The plaintext of one vault envelope; tries the secret whose label the envelope names first,
    then the others (as ansible-vault does). Raises VaultError."""
    lines = envelope.strip().splitlines()
    header = lines[0].strip().split(";") if lines else []
    if len(header) < 3 or header[0] != HEADER or header[1] not in ("1.1", "1.2"):
        raise VaultError("not an Ansible Vault envelope (expected $ANSIBLE_VAULT;1.1;AES256 or 1.2)")
    if header[2].strip() != "AES256":
        raise VaultError(f"unsupported vault cipher {header[2]!r} (only AES256)")
    label = header[3].strip() if len(header) > 3 else ""
    if not secrets:
        raise VaultError(
            "encrypted with Ansible Vault, and no vault password was given (--vault-password-file, "
            "--vault-id, --ask-vault-pass or ANSIBLE_VAULT_PASSWORD_FILE)"
        )
    try:
        inner = binascii.unhexlify("".join(line.strip() for line in lines[1:]))
        salt_hex, hmac_hex, cipher_hex = inner.split(b"\n", 2)
        salt, expected, ciphertext = (binascii.unhexlify(x) for x in (salt_hex, hmac_hex, cipher_hex.strip()))
    except (binascii.Error, ValueError):
        raise VaultError("damaged vault envelope (not the hex ansible-vault writes)") from None
    ordered = sorted(secrets, key=lambda s: s.label != label)  # the named vault id first
    for secret in ordered:
        plain = _open(secret.password.reveal().encode("utf-8", "surrogateescape"), salt, expected, ciphertext)
        if plain is not None:
            return plain.decode("utf-8")
    which = f" (vault id {label!r})" if label else ""
    raise VaultError(f"none of the vault passwords given opens it{which}")


def _open(password: bytes, salt: bytes, expected: bytes, ciphertext: bytes) -> bytes | None:
    derived = PBKDF2HMAC(algorithm=hashes.SHA256(), length=80, salt=salt, iterations=10000).derive(password)
    key, hmac_key, counter = derived[:32], derived[32:64], derived[64:80]
    check = HMAC(hmac_key, hashes.SHA256())
    check.update(ciphertext)
    try:
        check.verify(expected)
    except InvalidSignature:
        return None
    decryptor = Cipher(algorithms.AES(key), modes.CTR(counter)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def parse_vault_id(given: str) -> tuple[str, str]:
    """`label@source` -> (label, source); a bare source is the `default` id."""
    label, at, source = given.partition("@")
    return (label, source) if at else ("default", given)
