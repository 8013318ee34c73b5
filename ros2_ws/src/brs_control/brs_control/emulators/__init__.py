"""Protocol-level device emulators on pseudo-terminals (no hardware needed).

`pty_device.PtyDevice` is the shared serial plumbing (pty pair, raw mode, optional stable
symlink, reader thread, wire-time emulation, fault injection). Device emulators such as
`dynamixel_emulator` implement only their protocol on top of it.
"""
