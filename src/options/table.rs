//! The single table of rsync options (name, short letter, argument, help text,
//! implemented or not) that feeds the parser, `--help` and `man/resync.1`.
