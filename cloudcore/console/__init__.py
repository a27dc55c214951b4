"""The web console: nodes, devices, live twins, history charts and desired values in a browser,
served by `kedge console` (and started by `kedge up`)."""
