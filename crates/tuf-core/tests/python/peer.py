"""The Python side of tuf-core's differential tests (securesystemslib and python-tuf).

Usage (driven by crates/tuf-core/tests/interop.rs):

  peer.py canonical            stdin: one JSON string per line, each the text of a JSON
                               document; stdout: one line per input, {"ok": "<hex of
                               encode_canonical(json.loads(text))>"} or {"err": "..."}.
  peer.py sign DIR             generate ed25519, ecdsa and rsa keys with CryptoSigner, write
                               DIR/root.json, DIR/targets.json (signed by all three) and
                               DIR/keys.json (keyid, public key dict, PKCS#8 private PEM).
  peer.py verify DIR           check DIR/root.json and DIR/targets.json (written by tuf-core)
                               with python-tuf, check the key IDs in DIR/keys.json, load
                               each PKCS#8 private key and sign DIR/payload with it; print a
                               JSON report on stdout.
  peer.py verify-root FILE     check that the root.json in FILE (e.g. signed on a hardware
                               token by tufctl) meets its own root threshold with python-tuf;
                               print {"verified": true, "root_keys": {keyid: scheme}}.

Every failure is reported on stdout as JSON and a non-zero exit status, so the Rust test can
show the Python error.
"""

import json
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner, SSlibKey
from securesystemslib.signer._utils import compute_default_keyid
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    Root,
    TargetFile,
    Targets,
)
from tuf.api.serialization.json import CanonicalJSONSerializer, JSONSerializer


def canonical() -> None:
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        text = json.loads(line)
        try:
            value = json.loads(text)
            encoded = encode_canonical(value).encode("utf-8")
            out.write(json.dumps({"ok": encoded.hex()}) + "\n")
        except Exception as e:  # noqa: BLE001 - every failure is a data point
            out.write(json.dumps({"err": f"{type(e).__name__}: {e}"}) + "\n")
    out.flush()


def signers() -> list:
    return [
        CryptoSigner.generate_ed25519(),
        CryptoSigner.generate_ecdsa(),
        CryptoSigner.generate_rsa(size=3072),
    ]


def sign(d: Path) -> None:
    keys = signers()
    expires = datetime(2031, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    root = Root(expires=expires, consistent_snapshot=True)
    for role in ["root", "targets", "snapshot", "timestamp"]:
        for k in keys:
            root.add_key(k.public_key, role)
        root.roles[role].threshold = len(keys)
    root.unrecognized_fields["x-changelog"] = [{"who": "Zoë", "why": 'quote " and \\'}]
    root_md = Metadata(root)
    for k in keys:
        root_md.sign(k, append=True)

    targets = Targets(expires=expires)
    data = "bytes of a firmware image".encode()
    for path in ["fw/image-1.0.bin", "ünïcödé/ファイル.txt", "emoji/\U0001f600.tar"]:
        tf = TargetFile.from_data(path, data, ["sha256", "sha512"])
        tf.unrecognized_fields["custom"] = {"hwid": "board-a", "n": -5}
        targets.targets[path] = tf
    deleg_key = keys[0].public_key
    targets.delegations = Delegations(
        keys={deleg_key.keyid: deleg_key},
        roles={
            "releases": DelegatedRole(
                name="releases",
                keyids=[deleg_key.keyid],
                threshold=1,
                terminating=True,
                paths=["releases/*"],
            )
        },
    )
    targets_md = Metadata(targets)
    for k in keys:
        targets_md.sign(k, append=True)

    # Pretty-printed, non-canonical files: the Rust side must canonicalise, not trust layout.
    (d / "root.json").write_bytes(root_md.to_bytes(JSONSerializer(compact=False)))
    (d / "targets.json").write_bytes(targets_md.to_bytes(JSONSerializer(compact=False)))
    (d / "root.canonical.json").write_bytes(root_md.to_bytes(CanonicalJSONSerializer()))
    (d / "targets.canonical.json").write_bytes(
        targets_md.to_bytes(CanonicalJSONSerializer())
    )
    out = []
    for k in keys:
        pub = k.public_key
        out.append(
            {
                "keyid": pub.keyid,
                "key": pub.to_dict(),
                "private_pem": k.private_bytes.decode(),
            }
        )
    (d / "keys.json").write_text(json.dumps(out))
    print(json.dumps({"ok": True}))


def verify(d: Path) -> None:
    report: dict = {}
    root_bytes = (d / "root.json").read_bytes()
    targets_bytes = (d / "targets.json").read_bytes()
    root_md = Metadata[Root].from_bytes(root_bytes)
    targets_md = Metadata[Targets].from_bytes(targets_bytes)
    root_md.signed.verify_delegate("root", root_md.signed_bytes, root_md.signatures)
    root_md.signed.verify_delegate(
        "targets", targets_md.signed_bytes, targets_md.signatures
    )
    report["root_verified"] = True
    report["targets_verified"] = True
    # Unknown fields survive python-tuf's model: its canonical re-serialisation must equal
    # the bytes we wrote.
    report["root_reserialised"] = root_md.to_bytes(CanonicalJSONSerializer()).hex()
    report["targets_reserialised"] = targets_md.to_bytes(CanonicalJSONSerializer()).hex()

    payload = (d / "payload").read_bytes()
    sigs = []
    for entry in json.loads((d / "keys.json").read_text()):
        k = entry["key"]
        computed = compute_default_keyid(
            k["keytype"], k["scheme"], {"public": k["keyval"]["public"]}
        )
        public = SSlibKey.from_dict(entry["keyid"], dict(k))
        private = load_pem_private_key(entry["private_pem"].encode(), None)
        # CryptoSigner refuses a private key that does not match the public key.
        signer = CryptoSigner(private, public)
        sig = signer.sign(payload)
        public.verify_signature(sig, payload)
        sigs.append({"keyid": entry["keyid"], "computed": computed, "sig": sig.signature})
    report["signatures"] = sigs
    print(json.dumps(report))


def verify_root(f: Path) -> None:
    md = Metadata[Root].from_bytes(f.read_bytes())
    md.signed.verify_delegate("root", md.signed_bytes, md.signatures)
    role = md.signed.roles["root"]
    keys = {k: md.signed.keys[k].scheme for k in role.keyids}
    print(json.dumps({"verified": True, "root_keys": keys}))


def main() -> None:
    mode = sys.argv[1]
    try:
        if mode == "canonical":
            canonical()
        elif mode == "sign":
            sign(Path(sys.argv[2]))
        elif mode == "verify":
            verify(Path(sys.argv[2]))
        elif mode == "verify-root":
            verify_root(Path(sys.argv[2]))
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    except Exception as e:  # noqa: BLE001
        print(json.dumps({"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}))
        sys.exit(1)


if __name__ == "__main__":
    main()
