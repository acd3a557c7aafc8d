"""The pure functional core: no I/O, no clock reads, time passed in as `now`."""
