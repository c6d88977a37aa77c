"""Rewrite a generation folder made by an older xqg so that it records no path of the machine that
wrote it (issue 17: "manifests record no absolute path ... so a folder copied to another machine
still loads and still checks").

Before adapters were recorded by name, ``xqg generate`` wrote the adapter's absolute path into the
folder's run config (``config.json``, the manifest's ``config``) and hashed it, and the manifest's
``inputs`` and ``generator`` entries held absolute paths too. Such folders still load and resume
(:func:`xqg.generate.run.legacy_run_configs`), but they describe files of another machine. This
rewrite:

* records the adapter as :func:`~xqg.generate.spec.adapter_name` does today (``builtin`` for the
  shipped one, else the folder's name; its content stays bound by ``adapter_sha256``);
* recomputes the config hash and writes it into ``config.json``, the manifest and every shard's
  completion record, so a rerun of ``xqg generate`` with the same settings reuses every shard;
* records every other absolute path as :func:`xqg.io.portable_path` does (``xqg:…``,
  ``$XQG_HOME/…`` or relative to the folder);
* re-checksums the files it changed in the manifest's ``files`` table.

The queries themselves (the Parquet shards) are not touched. Every file is written atomically, the
manifest last; the folder is checked against its manifest before and after.

    python -m xqg.generate.portable reports/generated/xquad-v2-n20 [more folders]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xqg.errors import XqgError
from xqg.generate import store
from xqg.io import MANIFEST, config_hash, portable_tree, read_json, read_manifest, sha256_file, write_json


def _adapter_of_config(run_cfg: dict[str, Any]) -> None:
    """The adapter as today's xqg records it: ``builtin`` when its checksums are the shipped
    adapter's, else the folder's name (its content stays bound by ``adapter_sha256``)."""
    gen = run_cfg["generator"]
    adapter = gen.get("adapter")
    if not (isinstance(adapter, str) and adapter.startswith("/")):
        return
    from xqg.generate.spec import adapter_fingerprint
    from xqg.models.sources import BUILTIN_ADAPTER, builtin_adapter_dir

    shipped = (adapter_fingerprint(str(builtin_adapter_dir())) or {}).get("sha256")
    gen["adapter"] = BUILTIN_ADAPTER if run_cfg.get("adapter_sha256") == shipped else Path(adapter).name


def make_portable(folder: str | Path) -> dict[str, Any]:
    """Rewrite ``folder`` in place (see the module docstring); returns what changed:
    ``{"old_hash", "new_hash", "files"}`` (``files``: the names rewritten; empty if none needed)."""
    folder = Path(folder)
    manifest = read_manifest(folder, stage=store.STAGE)  # checked against its files first
    cfg_file = read_json(folder / "config.json")
    run_cfg = dict(manifest["config"])
    run_cfg["generator"] = dict(run_cfg.get("generator", {}))
    _adapter_of_config(run_cfg)
    old_hash, new_hash = manifest["config_hash"], config_hash(run_cfg)
    if cfg_file.get("config_hash") != old_hash:
        got = cfg_file.get("config_hash")
        raise XqgError(f"{folder / 'config.json'}: field 'config_hash': {got} ≠ the manifest's {old_hash}")
    changed: list[str] = []
    if new_hash != old_hash:
        write_json(folder / "config.json", {"config": run_cfg, "config_hash": new_hash})
        changed.append("config.json")
        for lang, shard, _ in store.shard_files(folder):
            name = store.shard_meta_name(lang, shard)
            meta = read_json(folder / name)
            if meta.get("config_hash") != old_hash:
                got = meta.get("config_hash")
                raise XqgError(f"{folder / name}: field 'config_hash': {got} ≠ the manifest's {old_hash}")
            write_json(folder / name, {**meta, "config_hash": new_hash})
            changed.append(name)
    new = {k: v for k, v in manifest.items() if k not in ("config", "config_hash")}
    new = {"config": run_cfg, "config_hash": new_hash, **portable_tree(new, folder)}
    new = {k: new[k] for k in manifest}  # the manifest's own key order
    for name in changed:
        if name in new["files"]:
            path = folder / name
            new["files"][name] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    if new != manifest:
        write_json(folder / MANIFEST, new)
        changed.append(MANIFEST)
    read_manifest(folder, stage=store.STAGE)  # and checked again
    return {"old_hash": old_hash, "new_hash": new_hash, "files": changed}


def main(argv: Sequence[str] | None = None) -> None:
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m xqg.generate.portable", description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+", type=Path, help="generation folders (xqg generate's output)")
    args = ap.parse_args(argv)
    try:
        for f in args.folders:
            r = make_portable(f)
            what = f"{len(r['files'])} files rewritten" if r["files"] else "already portable"
            print(f"{f}: {what}; config_hash {r['old_hash']} → {r['new_hash']}")
    except XqgError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
