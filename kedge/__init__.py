"""The command line (`cli`, `up`) and the pieces every process shares: the channel contract,
the MQTT client, backoff, supervised tasks, errors, logging, process supervision, sealing."""
