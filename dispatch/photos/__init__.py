"""Citizens' photos: made safe to keep (`image`) and kept by their digest (`folder`)."""

from dispatch.photos.folder import PhotoFolder
from dispatch.photos.image import MEDIA_TYPE, CleanPhoto, PhotoRefused, clean_photo, sniff

__all__ = ["MEDIA_TYPE", "CleanPhoto", "PhotoFolder", "PhotoRefused", "clean_photo", "sniff"]
