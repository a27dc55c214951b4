"""The cloud/edge channel's shared parts: the message model both ends speak."""
