//! rsync's filter-rule language (issue 3). So far: the pattern matcher.
//! The rules themselves (include/exclude, merge files, modifiers, anchoring)
//! are not wired in yet; the filter options are still rejected as unsupported.

pub mod wildmatch;
