"""edged's CRI runtime: a private containerd (`containerd`), images built and imported without a
registry (`images`), and the CRI calls that run pods in it (`client`)."""
