"""Rebuilds a key from printed Shamir shares, following docs/BACKUP-FORMAT.md and nothing
else: Python's standard library only, no tufctl code.

Usage (driven by crates/tufctl/tests/backup_format.rs):

  rebuild_key.py ROOT_JSON OUT_SEC SHARE.txt...

Reads the shares' text form, checks each record (version, checksum) and that they belong to
one backup, interpolates the secret, writes the `.sec` file of step 4 to OUT_SEC (public key
taken from ROOT_JSON by the recorded key ID), checks step 5 (the key ID of that public key is
the recorded one), and prints a JSON report.
"""

import base64
import hashlib
import json
import sys


def gf_mul(a: int, b: int) -> int:
    """Multiplication in GF(2^8) with the reducing polynomial 0x11B."""
    out = 0
    while b:
        if b & 1:
            out ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11B
        b >>= 1
    return out


def gf_inv(a: int) -> int:
    """a^254, the inverse of a non-zero a in GF(2^8)."""
    result, power, e = 1, a, 254
    while e:
        if e & 1:
            result = gf_mul(result, power)
        power = gf_mul(power, power)
        e >>= 1
    return result


def read_text(path: str) -> bytes:
    """The record of a share's text form: base32 between the BEGIN/END lines."""
    text = open(path, encoding="utf-8").read()
    begin = text.index("-----BEGIN TUF KEY SHARE-----") + len("-----BEGIN TUF KEY SHARE-----")
    end = text.index("-----END TUF KEY SHARE-----")
    body = "".join(c for c in text[begin:end].upper() if c not in " \r\n\t-")
    body += "=" * (-len(body) % 8)
    return base64.b32decode(body)


def parse(record: bytes) -> dict:
    if hashlib.sha256(record[:-4]).digest()[:4] != record[-4:]:
        raise ValueError("checksum does not match")
    if record[0] != 1:
        raise ValueError(f"unknown format version {record[0]}")
    at = 1
    backup_id = record[at:at + 8].hex()
    at += 8
    role, k, n, x = record[at], record[at + 1], record[at + 2], record[at + 3]
    at += 4
    if record[at] == 0:
        key_id = record[at + 1:at + 33].hex()
        at += 33
    else:
        length = record[at]
        key_id = record[at + 1:at + 1 + length].decode("ascii")
        at += 1 + length
    length = record[at]
    factory = record[at + 1:at + 1 + length].decode("ascii")
    at += 1 + length
    secret_len = int.from_bytes(record[at:at + 2], "big")
    at += 2
    ys = record[at:at + secret_len]
    if at + secret_len != len(record) - 4:
        raise ValueError("record length does not match L")
    return {"backup_id": backup_id, "role": role, "k": k, "n": n, "x": x,
            "key_id": key_id, "factory": factory, "ys": ys}


def interpolate(shares: list) -> bytes:
    xs = [s["x"] for s in shares]
    secret = bytearray()
    for j in range(len(shares[0]["ys"])):
        s_j = 0
        for i, share in enumerate(shares):
            term = share["ys"][j]
            for m, x_m in enumerate(xs):
                if m != i:
                    term = gf_mul(term, gf_mul(x_m, gf_inv(x_m ^ xs[i])))
            s_j ^= term
        secret.append(s_j)
    return bytes(secret)


def canonical(value) -> bytes:
    """Canonical JSON of objects and strings, as step 5 defines it: keys sorted, no
    whitespace, only `"` and `\\` escaped, everything else (a PEM's newlines too) as is."""
    if isinstance(value, str):
        return b'"' + value.replace("\\", "\\\\").replace('"', '\\"').encode("utf-8") + b'"'
    items = sorted(value.items())
    return b"{" + b",".join(canonical(k) + b":" + canonical(v) for k, v in items) + b"}"


def main() -> None:
    root_json, out_sec, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
    shares = [parse(read_text(p)) for p in paths]
    same = ("backup_id", "role", "k", "n", "key_id", "factory")
    if any(s[f] != shares[0][f] for s in shares for f in same):
        raise ValueError("shares of different backups")
    if len({s["x"] for s in shares}) != len(shares) or len(shares) < shares[0]["k"]:
        raise ValueError("need K shares with distinct indices")
    secret = interpolate(shares[: shares[0]["k"]])
    t = secret[0]
    keytype = secret[1:1 + t].decode("ascii")
    s = secret[1 + t]
    scheme = secret[2 + t:2 + t + s].decode("ascii")
    der = secret[2 + t + s:]
    b64 = base64.b64encode(der).decode("ascii")
    pem = "-----BEGIN PRIVATE KEY-----\n" + "".join(
        b64[i:i + 64] + "\n" for i in range(0, len(b64), 64)) + "-----END PRIVATE KEY-----\n"
    key_id = shares[0]["key_id"]
    root = json.load(open(root_json, encoding="utf-8"))
    public = root["signed"]["keys"][key_id]["keyval"]["public"]
    computed = hashlib.sha256(canonical(
        {"keytype": keytype, "keyval": {"public": public}, "scheme": scheme})).hexdigest()
    sec = {"keytype": keytype, "scheme": scheme, "keyval": {"public": public, "private": pem}}
    with open(out_sec, "w", encoding="utf-8") as f:
        json.dump(sec, f)
    print(json.dumps({"key_id": key_id, "computed_key_id": computed, "keytype": keytype,
                      "scheme": scheme, "der": der.hex(), "factory": shares[0]["factory"],
                      "role": shares[0]["role"]}))


if __name__ == "__main__":
    main()
