"""The command line (`cli`, `up`) and the pieces every process shares: the channel contract,
the MQTT client, backoff, supervised tasks, errors, logging, process supervision, sealing."""

import os

# gRPC's fork handlers run in every child forked while its threads are up (edgecore forks pods'
# exec processes with a preexec_fn, so through fork()): seen aborting a `kubectl exec` child with
# "epoll_wait error: Bad file descriptor" before it reached exec. No child here uses gRPC, so the
# handlers are turned off for every kedge process (read when grpc is first imported).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
