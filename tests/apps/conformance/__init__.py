"""Real applications on Debian's packaged frameworks, served both through resumelb +
zkworker and through gunicorn by tests/e2e/test_lb_conformance.py, which compares what a
client gets from each."""
