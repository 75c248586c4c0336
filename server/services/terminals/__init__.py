"""Door terminals: provisioning and availability, broker passwords, and commands to one terminal."""
