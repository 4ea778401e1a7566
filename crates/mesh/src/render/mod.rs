//! Preview rendering: turntable video (MP4) and snapshots (PNG), on the CPU.
