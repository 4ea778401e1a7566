//! The trellis2 command-line tool
