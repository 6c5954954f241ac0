"""Fault tests: the real services stopped, hanging or failing, and a fault-injecting state machine."""
