//! Temporary minimal parser; replaced by the table-driven popt-compatible parser.

use super::{Append, Options};

/// What the caller should do after parsing argv.
#[derive(Debug)]
pub enum ParseOutcome {
    /// Run a transfer with these options.
    Run(Box<Options>),
    /// Exit right away with this code (after `--help`, `--version` or a usage error,
    /// whose message the parser has already printed to stderr/stdout).
    Exit(i32),
}

/// Parse `args` (without argv\[0\]) into [`Options`].
pub fn parse(args: &[std::ffi::OsString]) -> ParseOutcome {
    let mut o = Options::new();
    let mut operands = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        if s == "--" {
            operands.extend(it.by_ref().cloned());
            break;
        }
        if let Some(long) = s.strip_prefix("--") {
            match long {
                "archive" => archive(&mut o),
                "verbose" => o.verbose += 1,
                "itemize-changes" => o.itemize += 1,
                "stats" => o.stats = true,
                "list-only" => o.list_only = true,
                "hard-links" => o.hard_links = true,
                "sparse" => o.sparse = true,
                "xattrs" => o.xattrs = true,
                "acls" => {
                    o.acls = true;
                    o.perms = true
                }
                "dry-run" => o.dry_run = true,
                "checksum" => o.checksum = true,
                "inplace" => o.inplace = true,
                "append" => o.append = Append::Append,
                "numeric-ids" => o.numeric_ids = true,
                "no-inc-recursive" => {}
                _ => {
                    eprintln!("resync: --{long}: unknown option");
                    return ParseOutcome::Exit(1);
                }
            }
        } else if s.len() > 1 && s.starts_with('-') {
            for c in s[1..].chars() {
                match c {
                    'a' => archive(&mut o),
                    'v' => o.verbose += 1,
                    'i' => o.itemize += 1,
                    'r' => o.recursive = true,
                    'l' => o.links = true,
                    'p' => o.perms = true,
                    't' => o.times = true,
                    'g' => o.group = true,
                    'o' => o.owner = true,
                    'D' => {
                        o.devices = true;
                        o.specials = true
                    }
                    'H' => o.hard_links = true,
                    'X' => o.xattrs = true,
                    'A' => {
                        o.acls = true;
                        o.perms = true
                    }
                    'S' => o.sparse = true,
                    'n' => o.dry_run = true,
                    'c' => o.checksum = true,
                    'W' => o.whole_file = Some(true),
                    'q' => o.quiet = true,
                    'L' => o.copy_links = true,
                    'd' => o.dirs = true,
                    'R' => o.relative = true,
                    'h' => o.human_readable += 1,
                    'I' => o.ignore_times = true,
                    'u' => o.update = true,
                    'x' => o.one_file_system += 1,
                    _ => {
                        eprintln!("resync: -{c}: unknown option");
                        return ParseOutcome::Exit(1);
                    }
                }
            }
        } else {
            operands.push(a.clone());
        }
    }
    if operands.is_empty() {
        eprintln!("resync: no source given");
        return ParseOutcome::Exit(1);
    }
    if operands.len() == 1 {
        o.list_only = true;
    } else {
        o.dest = operands.pop();
    }
    o.sources = operands;
    ParseOutcome::Run(Box::new(o))
}

fn archive(o: &mut Options) {
    o.recursive = true;
    o.links = true;
    o.perms = true;
    o.times = true;
    o.group = true;
    o.owner = true;
    o.devices = true;
    o.specials = true;
}
