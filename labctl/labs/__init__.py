"""Labs and their providers (side effects: libvirt, QEMU, sshd, files; imports: everything below
execution). ``providers`` create, inspect and remove labs (netns, libvirt, ssh); ``state`` is
what ``up`` created; ``sshd``, ``libvirtd``, ``image``, ``seed``, ``vmlab`` and ``xmlrender``
are the parts they are built from. Only ``providers.libvirt`` imports libvirt.
"""
