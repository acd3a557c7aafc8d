"""Positions and times carried inside video files: GoPro GPMF, MISB ST 0601 KLV, DJI SRT
subtitles and ISO 6709 location tags. Pure parsers over bytes and text."""
