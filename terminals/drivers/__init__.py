"""Input-device drivers for the door terminal: each one only builds presentations and hands them to `submit`."""
