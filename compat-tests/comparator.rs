//! Unit tests of the comparator (filled below).
