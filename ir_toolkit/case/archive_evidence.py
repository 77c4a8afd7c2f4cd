"""Archives as evidence: a ZIP is hashed into the case like any file, with its member listing, and
each member's own evidence entry names the archive it came from.

case.json, for an archive: ``format: "zip"``, ``members``: one dict per member (``member``: its name
as written in the archive, ``size``, ``compressed``, ``sha256``, ``status``: unpacked, archive,
ignored or "not unpacked: why", ``evidence``: the case-relative copy of the member), counts 0; an
archive inside another also has ``archive`` (the outer archive's sha256) and ``member``. For a
member: ``archive`` (its archive's sha256), ``member`` and ``original`` (``A.zip!dir/x.json``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ir_toolkit.sources import containers

if TYPE_CHECKING:
    from ir_toolkit.case.case import Case

__all__ = ["record_archive", "record_member"]


def record_archive(case: Case, shown: str, info: dict[str, Any], parents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Hash a ZIP archive into the case as evidence, with its member listing.

    Args:
        case: The case.
        shown: The archive's name as the responder sees it.
        info: ``Expanded.archives[shown]`` of :func:`ir_toolkit.sources.containers.expand`.
        parents: What this function returned for the archives already recorded (an archive inside
            another is tied to it).

    Returns:
        ``{"entry": case.json entry, "result": the import result of the archive, "listing": its members}``.
    """
    entry, is_new = case.add_evidence(info["path"], source="import", format=containers.ARCHIVE)
    listing = [dict(m) for m in info["members"]]
    fields: dict[str, Any] = {"members": listing, "records": 0, "imported": 0, "duplicates": 0, "quarantined": 0}
    parent = parents.get(info["archive"]) if info.get("archive") else None
    if is_new:
        fields["original"] = shown
        if parent is not None:
            fields.update(archive=parent["entry"]["sha256"], member=info["member"])
    case.update_evidence(entry["sha256"], **fields)
    if parent is not None:
        for m in parent["listing"]:
            if m["member"] == info["member"] and m.get("sha256") == entry["sha256"]:
                m["evidence"] = entry["path"]
        case.update_evidence(parent["entry"]["sha256"], members=parent["listing"])
    result = {"path": shown, "format": containers.ARCHIVE, "status": "archive", "records": 0, "imported": 0,
              "duplicates": 0, "quarantined": 0, "sha256": entry["sha256"], "evidence": entry["path"],
              "skipped": False, "members": len(listing)}
    if parent is not None:
        result.update(archive=info["archive"], member=info["member"])
    case.log_action("import.archive", path=shown, sha256=entry["sha256"], members=len(listing))
    return {"entry": entry, "result": result, "listing": listing}


def record_member(case: Case, archive: dict[str, Any], member: str | None, shown: str, entry: dict[str, Any],
                  is_new: bool) -> None:
    """Tie a member's evidence entry to its archive (both ways) in case.json.

    Args:
        case: The case.
        archive: What :func:`record_archive` returned for its archive.
        member: Its name inside the archive, as written there.
        shown: Its name as the responder sees it (``A.zip!dir/x.json``).
        entry: Its case.json entry (from :meth:`Case.add_evidence`).
        is_new: False when the same content was evidence before (it keeps the name it first came under).
    """
    for m in archive["listing"]:
        if m["member"] == member and m.get("sha256") == entry["sha256"] and "evidence" not in m:
            m["evidence"] = entry["path"]
            break
    case.update_evidence(archive["entry"]["sha256"], members=archive["listing"])
    if is_new:
        case.update_evidence(entry["sha256"], archive=archive["entry"]["sha256"], member=member, original=shown)
