"""``make cluster``: the platform on test hosts made of network namespaces (``tests.cluster.run``)."""
