"""The export storage: where ``data_export`` jobs write their files and ``GET
/jobs/{id}/export`` reads them, always as ``storages["exports"]`` (Django's storage API).

The default backend, ``ExportStorage``, is a FileSystemStorage rooted at
``DRACONIC_EXPORT_DIR``. Two things set it apart, both for exports: a file replaces the one
of the same name (a retry, or a re-run with the same ``filename``), instead of being saved
under a new random name; and it is written atomically, to a temporary file in the same
directory, fsynced, then renamed into place, so a reader never sees half an export. Another
backend (``DRACONIC_EXPORT_STORAGE``, with ``DRACONIC_EXPORT_STORAGE_OPTIONS``) keeps its own
rules for both.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.core.signals import setting_changed
from django.utils.functional import cached_property

#: The alias in ``STORAGES`` of the storage exports are written to and served from.
EXPORT_STORAGE = "exports"


def export_storage() -> Storage:
    """The configured export storage (``STORAGES["exports"]``)."""
    return storages[EXPORT_STORAGE]


def check_export_storage() -> None:
    """Build the export storage once at start-up, so a backend that cannot be imported or
    does not take its options stops the process instead of failing the first export."""
    try:
        export_storage()
    except Exception as exc:
        raise ImproperlyConfigured(
            "DRACONIC_EXPORT_STORAGE / DRACONIC_EXPORT_STORAGE_OPTIONS: cannot build the "
            f"export storage: {type(exc).__name__}: {exc}"
        ) from exc


class ExportStorage(FileSystemStorage):
    """FileSystemStorage rooted at ``DRACONIC_EXPORT_DIR`` unless given a ``location``; the
    setting is read when first used and again after it changes (a test's override)."""

    def __init__(self, location: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("allow_overwrite", True)
        kwargs.setdefault("file_permissions_mode", 0o640)
        super().__init__(location=location, **kwargs)
        self._export_location = location
        setting_changed.connect(self._export_dir_changed)

    @cached_property
    def base_location(self) -> str:
        return str(self._export_location or settings.DRACONIC_EXPORT_DIR)

    def _export_dir_changed(self, setting: str, **kwargs: Any) -> None:
        if setting == "DRACONIC_EXPORT_DIR":
            self.__dict__.pop("base_location", None)
            self.__dict__.pop("location", None)

    def _save(self, name: str, content: File[Any]) -> str:
        """Write ``content`` as ``name``: a temporary file beside the target, fsynced, then
        renamed over it (atomic on one filesystem). Returns the name, relative to the root."""
        target = Path(self.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=f"-{target.name}")
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in content.chunks():
                    handle.write(chunk if isinstance(chunk, bytes) else chunk.encode())
                handle.flush()
                os.fsync(handle.fileno())
            if self.file_permissions_mode is not None:
                os.chmod(temp, self.file_permissions_mode)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return os.path.relpath(target, self.location).replace("\\", "/")
