"""The terminal side (ARCHITECTURE "Gateway"): the ISO 8583 server terminals talk to, its
terminal-status gate, the issuer adapter and the simulators of the issuer and the terminals."""
