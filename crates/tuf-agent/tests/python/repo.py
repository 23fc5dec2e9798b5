#!/usr/bin/env python3
"""Builds TUF repositories with python-tuf for the tuf-agent tests.

Usage: repo.py DIR OPS_JSON

OPS_JSON is a JSON list of [op, {args}] pairs, applied in order. State (keys and the current
metadata of every role) lives in DIR/state/, so a test can build a repository, run the client,
change the repository and run the client again. What is served lives in DIR/metadata/ and
DIR/targets/, laid out as a TUF repository with consistent snapshots (or plain names when
`init` is given consistent=false).
"""

import json
import os
import sys
from datetime import datetime, timedelta, timezone
from urllib import parse

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)

TOP = ("root", "targets", "snapshot", "timestamp")


def generate(key_type):
    if key_type == "ed25519":
        return CryptoSigner.generate_ed25519()
    if key_type == "ecdsa":
        return CryptoSigner.generate_ecdsa()
    if key_type == "rsa":
        return CryptoSigner.generate_rsa()
    raise ValueError(f"unknown key type {key_type}")


def load_signer(pem):
    return CryptoSigner(load_pem_private_key(pem.encode(), None))


def quote(name):
    return parse.quote(name, "")


def in_days(days):
    t = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=days)
    return t


class Repo:
    def __init__(self, path):
        self.path = path
        self.state_dir = os.path.join(path, "state")
        self.meta_dir = os.path.join(path, "metadata")
        self.targets_dir = os.path.join(path, "targets")
        state_file = os.path.join(self.state_dir, "state.json")
        if os.path.exists(state_file):
            with open(state_file) as f:
                self.state = json.load(f)
        else:
            self.state = {"keys": {}, "dirty": [], "published": [], "old_root_keys": [],
                          "sign_new": None, "consistent": True, "key_type": "ed25519"}
        self.md = {}

    # --- state -------------------------------------------------------------------------------
    def role(self, name):
        if name not in self.md:
            with open(os.path.join(self.state_dir, quote(name) + ".json"), "rb") as f:
                self.md[name] = Metadata.from_bytes(f.read())
        return self.md[name]

    def save(self):
        os.makedirs(self.state_dir, exist_ok=True)
        for name, md in self.md.items():
            with open(os.path.join(self.state_dir, quote(name) + ".json"), "wb") as f:
                f.write(md.to_bytes())
        with open(os.path.join(self.state_dir, "state.json"), "w") as f:
            json.dump(self.state, f)

    def signers(self, name):
        return [load_signer(p) for p in self.state["keys"][name]]

    def new_keys(self, name, count, key_type=None):
        signers = [generate(key_type or self.state["key_type"]) for _ in range(count)]
        self.state["keys"][name] = [s.private_bytes.decode() for s in signers]
        return signers

    def dirty(self, name):
        if name not in self.state["dirty"]:
            self.state["dirty"].append(name)

    def delegator(self, name):
        """The role whose delegations name `name`."""
        for parent in [n for n in self.state["keys"] if n not in ("root", "snapshot", "timestamp")]:
            d = self.role(parent).signed.delegations
            if d is None:
                continue
            if d.roles and name in d.roles:
                return parent
            if d.succinct_roles and d.succinct_roles.is_delegated_role(name):
                return parent
        return None

    # --- operations ----------------------------------------------------------------------------
    def op_init(self, key_type="ed25519", consistent=True, threshold=1, keys=1):
        self.state["key_type"] = key_type
        self.state["consistent"] = consistent
        root = Root(expires=in_days(365), consistent_snapshot=consistent)
        for name in TOP:
            for s in self.new_keys(name, keys):
                root.add_key(s.public_key, name)
            root.roles[name].threshold = threshold
        self.md["root"] = Metadata(root)
        self.md["targets"] = Metadata(Targets(expires=in_days(90)))
        self.md["snapshot"] = Metadata(Snapshot(expires=in_days(7)))
        self.md["timestamp"] = Metadata(Timestamp(expires=in_days(1)))
        for name in TOP:
            self.dirty(name)

    def op_add_target(self, path, data, role="targets", custom=None, hash_algorithms=None,
                      repeat=1):
        raw = data.encode() * repeat
        tf = TargetFile.from_data(path, raw, hash_algorithms or ["sha256"])
        if custom is not None:
            tf.unrecognized_fields["custom"] = custom
        self.role(role).signed.targets[path] = tf
        dirname, sep, base = path.rpartition("/")
        for name in {path} | {f"{dirname}{sep}{h}.{base}" for h in tf.hashes.values()}:
            full = os.path.join(self.targets_dir, name)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(raw)
        self.dirty(role)

    def op_delegate(self, name, parent="targets", paths=None, hash_prefixes=None,
                    terminating=False, threshold=1, keys=1, existing=None):
        """Delegates to a new role, or (existing="same-keys" or "other-keys") to a role that
        another parent delegates already: listing the keys that sign it, or new keys that
        never do (a diamond whose role is signed for one delegator only)."""
        if existing == "same-keys":
            signers = self.signers(name)
        elif existing == "other-keys":
            signers = [generate(self.state["key_type"]) for _ in range(keys)]
        else:
            signers = self.new_keys(name, keys)
        p = self.role(parent).signed
        if p.delegations is None:
            p.delegations = Delegations(keys={}, roles={})
        for s in signers:
            p.delegations.keys[s.public_key.keyid] = s.public_key
        p.delegations.roles[name] = DelegatedRole(
            name, [s.public_key.keyid for s in signers], threshold, terminating,
            paths=paths, path_hash_prefixes=hash_prefixes)
        if existing is None:
            self.md[name] = Metadata(Targets(expires=in_days(90)))
            self.dirty(name)
        self.dirty(parent)

    def op_succinct(self, bit_length, name_prefix="bin", parent="targets"):
        signer = generate(self.state["key_type"])
        pem = signer.private_bytes.decode()
        succinct = SuccinctRoles([signer.public_key.keyid], 1, bit_length, name_prefix)
        p = self.role(parent).signed
        p.delegations = Delegations(keys={signer.public_key.keyid: signer.public_key},
                                    succinct_roles=succinct)
        for bin_name in succinct.get_roles():
            self.state["keys"][bin_name] = [pem]
            self.md[bin_name] = Metadata(Targets(expires=in_days(90)))
            self.dirty(bin_name)
        self.dirty(parent)

    def op_rotate(self, role, keys=1, threshold=1, sign_new=None, sign_with_old=True,
                  key_type=None):
        """New keys for `role`. A root rotation is signed by the old root keys (unless
        sign_with_old is false) and by the first `sign_new` new keys (all by default)."""
        root = self.role("root").signed
        if role == "root" and sign_with_old:
            self.state["old_root_keys"] = self.state["keys"]["root"]
        old_ids = list(root.roles[role].keyids) if role in TOP else None
        signers = self.new_keys(role, keys, key_type)
        if role in TOP:
            for kid in old_ids:
                root.revoke_key(kid, role)
            for s in signers:
                root.add_key(s.public_key, role)
            root.roles[role].threshold = threshold
            self.dirty("root")
        else:
            parent = self.delegator(role)
            d = self.role(parent).signed.delegations
            dr = d.roles[role]
            for kid in dr.keyids:
                d.keys.pop(kid, None)
            dr.keyids = [s.public_key.keyid for s in signers]
            dr.threshold = threshold
            for s in signers:
                d.keys[s.public_key.keyid] = s.public_key
            self.dirty(parent)
        if role == "root":
            self.state["sign_new"] = sign_new

    def op_expire(self, role, days=-1):
        self.role(role).signed.expires = in_days(days)
        self.dirty(role)

    def op_bump(self, role):
        self.dirty(role)

    def op_set_version(self, role, version):
        """Publishes `role` with exactly this version next time."""
        self.role(role).signed.version = version - 1
        self.dirty(role)

    def op_publish(self, hashes=False):
        """Signs and writes every changed role, then snapshot and timestamp."""
        dirty = list(self.state["dirty"])
        published = self.state["published"]
        consistent = self.state["consistent"]

        def bump(name):
            md = self.role(name)
            if name in published:
                md.signed.version += 1
            else:
                published.append(name)
                if md.signed.version < 1:
                    md.signed.version = 1
            return md

        if "root" in dirty:
            md = bump("root")
            md.signatures.clear()
            new = self.signers("root")
            if self.state["sign_new"] is not None:
                new = new[: self.state["sign_new"]]
            for s in new + [load_signer(p) for p in self.state["old_root_keys"]]:
                md.sign(s, append=True)
            self.state["old_root_keys"] = []
            self.state["sign_new"] = None
            data = md.to_bytes()
            self.write(f"{md.signed.version}.root.json", data)
            self.write("root.json", data)

        targets_roles = [n for n in dirty if n not in ("root", "snapshot", "timestamp")]
        snapshot_changed = bool(targets_roles) or "snapshot" in dirty
        snap = self.role("snapshot")
        for name in targets_roles:
            md = bump(name)
            self.sign(name, md)
            data = md.to_bytes()
            self.write_versioned(name, md.signed.version, data)
            meta = MetaFile(md.signed.version)
            if hashes:
                meta = MetaFile(md.signed.version, len(data), MetaFile.from_data(1, data, ["sha256"]).hashes)
            snap.signed.meta[f"{name}.json"] = meta

        if snapshot_changed:
            md = bump("snapshot")
            self.sign("snapshot", md)
            data = md.to_bytes()
            self.write_versioned("snapshot", md.signed.version, data)
            meta = MetaFile(md.signed.version)
            if hashes:
                meta = MetaFile(md.signed.version, len(data), MetaFile.from_data(1, data, ["sha256"]).hashes)
            self.role("timestamp").signed.snapshot_meta = meta

        if snapshot_changed or "timestamp" in dirty or "root" in dirty:
            md = bump("timestamp")
            self.sign("timestamp", md)
            self.write("timestamp.json", md.to_bytes())
        self.state["dirty"] = []

    def op_resign(self, file, role, set=None):
        """Edits fields of `signed` in a served file and re-signs it with `role`'s keys: the
        signature is valid, the content is not what a correct repository would serve."""
        full = os.path.join(self.meta_dir, file)
        with open(full, "rb") as f:
            doc = json.load(f)
        doc["signed"].update(set or {})
        canonical = encode_canonical(doc["signed"]).encode()
        doc["signatures"] = []
        for s in self.signers(role):
            sig = s.sign(canonical)
            doc["signatures"].append({"keyid": sig.keyid, "sig": sig.signature})
        with open(full, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)

    # --- writing -------------------------------------------------------------------------------
    def sign(self, name, md):
        md.signatures.clear()
        for s in self.signers(name):
            md.sign(s, append=True)

    def write_versioned(self, name, version, data):
        if self.state["consistent"]:
            self.write(f"{version}.{quote(name)}.json", data)
        else:
            self.write(f"{quote(name)}.json", data)

    def write(self, filename, data):
        os.makedirs(self.meta_dir, exist_ok=True)
        with open(os.path.join(self.meta_dir, filename), "wb") as f:
            f.write(data)


def main():
    repo = Repo(sys.argv[1])
    for op, args in json.loads(sys.argv[2]):
        getattr(repo, "op_" + op)(**args)
    repo.save()


if __name__ == "__main__":
    main()
