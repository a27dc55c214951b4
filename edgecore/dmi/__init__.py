"""KubeEdge's DMI at the edge: the device manager mappers built on KubeEdge's mapper framework
register with and report to (`server`), the calls edgecore makes on each mapper's own socket
(`mappers`), and the translation between our twins and DMI's messages (`convert`)."""
