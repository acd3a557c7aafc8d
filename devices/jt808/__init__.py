"""JT/T 808 (2011/2013/2019), the TCP protocol of Chinese vehicle and body-worn terminals.

Sans-I/O throughout: `frame` owns the 0x7e framing, 0x7d escaping and XOR checksum,
`header` the message header of each version, `messages` the bodies we read and write, and
`stream` turns bytes in any chunking into decoded messages or reasons. `report` says what a
location report means on our wire (an OwnTracks `location`, and an `sos` for the emergency
bit); `terminals` what the center keeps per terminal. The asyncio server is
`devices.jt808_gateway`.
"""
