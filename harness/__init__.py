"""What runs the center on one machine for the demo, the tests and the benchmarks: local
redis-server and mosquitto daemons (daemons.py) and the whole center beside a simulated city
(center.py). The product never imports it."""
