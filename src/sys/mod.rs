//! Thin, safe wrappers over the Linux calls resync relies on, each with its fallback.
