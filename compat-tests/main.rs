//! Differential tests: resync against the real rsync on generated trees.
