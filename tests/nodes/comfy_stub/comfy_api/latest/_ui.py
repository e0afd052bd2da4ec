"""Stand-in for `comfy_api.latest._ui` (ComfyUI @ 783545f): the saved-file UI results."""
from __future__ import annotations

from ._io import FolderType, _UIOutput


class SavedResult(dict):
    """{"filename", "subfolder", "type"} of a file the UI can fetch through /view."""

    def __init__(self, filename: str, subfolder: str, type: FolderType):
        super().__init__(filename=filename, subfolder=subfolder, type=type.value)

    @property
    def filename(self) -> str:
        return self["filename"]

    @property
    def subfolder(self) -> str:
        return self["subfolder"]

    @property
    def type(self) -> FolderType:
        return FolderType(self["type"])


class PreviewVideo(_UIOutput):
    """A saved video shown on the node: {"images": [...], "animated": (True,)}."""

    def __init__(self, values: list[SavedResult | dict], **kwargs):
        self.values = values

    def as_dict(self) -> dict:
        return {"images": self.values, "animated": (True,)}
