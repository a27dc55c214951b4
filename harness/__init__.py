"""Real processes for tests and benchmarks: mosquitto, edgecore, the API server, cloudcore and
PostgreSQL, each on free loopback ports and always stopped; probes and condition waits. Not part
of the product (nothing under the product packages imports it)."""
