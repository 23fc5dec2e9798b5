"""python-tuf's verdict on tuf-core's attack catalogue (crates/tuf-core/tests/fixtures/).

Usage (driven by crates/tuf-core/tests/fixtures.rs):

  fixtures.py DIR...   for each fixture directory, make the check every client makes with
                       python-tuf: parse metadata.json as the role named in expect.json, verify
                       it against the trusted root (root.json, or the metadata itself for a
                       root), then check expiry against expect.json's "now" when given.
                       stdout: one JSON object {DIR name: verdict}, a verdict being
                       {"outcome": "accept", "valid": n, "invalid": n} or
                       {"outcome": "reject", "error": "<exception class>", "message": "..."}.

Only expect.json's "role" and "now" are read: the verdict is python-tuf's own.
"""

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from securesystemslib.exceptions import UnverifiedSignatureError
from tuf.api.exceptions import ExpiredMetadataError, RepositoryError
from tuf.api.metadata import Metadata, Root


def verdict(d: Path) -> dict:
    expect = json.loads((d / "expect.json").read_bytes())
    role = expect["role"]
    try:
        md = Metadata.from_bytes((d / "metadata.json").read_bytes())
        if md.signed.type != role:
            # The check python-tuf's ngclient makes on every role it loads.
            raise RepositoryError(f"Expected '{role}', got '{md.signed.type}'")
        root_file = d / "root.json"
        if root_file.exists():
            root = Metadata[Root].from_bytes(root_file.read_bytes())
        else:
            root = md
        root.verify_delegate(role, md)
        if "now" in expect:
            now = datetime.strptime(expect["now"], "%Y-%m-%dT%H:%M:%SZ")
            if md.signed.is_expired(now.replace(tzinfo=timezone.utc)):
                raise ExpiredMetadataError(f"{role} expired at {md.signed.expires}")
        valid, invalid = count(root.signed, role, md)
        return {"outcome": "accept", "valid": valid, "invalid": invalid}
    except Exception as e:  # noqa: BLE001 - every refusal is a verdict, named by its class
        return {"outcome": "reject", "error": type(e).__name__, "message": message(e)}


def message(e: Exception) -> str:
    """The exception's text and what caused it (python-tuf wraps parse errors)."""
    text = f"{e}"
    cause = e.__cause__ or e.__context__
    if cause is not None:
        text += f" ({type(cause).__name__}: {cause})"
    return text


def count(root: Root, role: str, md: Metadata) -> tuple:
    """Signatures by the role's keys that verify, and those that do not."""
    r = root.get_delegated_role(role)
    valid = invalid = 0
    for keyid in r.keyids:
        sig = md.signatures.get(keyid)
        if sig is None:
            continue
        try:
            root.get_key(keyid).verify_signature(sig, md.signed_bytes)
            valid += 1
        except (UnverifiedSignatureError, ValueError):
            invalid += 1
    return valid, invalid


def main() -> None:
    print(json.dumps({Path(a).name: verdict(Path(a)) for a in sys.argv[1:]}, sort_keys=True))


if __name__ == "__main__":
    main()
