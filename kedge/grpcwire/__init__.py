"""gRPC's unary calls over HTTP/2 (RFC 9113), served without grpcio's per-call machinery."""
