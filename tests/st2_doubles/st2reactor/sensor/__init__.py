"""Stand-in for ``st2reactor.sensor``: only the sensor base classes."""
