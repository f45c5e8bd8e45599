//! rsync's filter rules: `--filter`, `--include`/`--exclude` (and their
//! `-from` files), `-C`, `-F`, merge and per-directory merge files.
//!
//! The command line's rules are parsed once into one list ([`Filters`]), as
//! rsync's client does, then split by side: the sender's list decides what is
//! transferred, the receiver's what `--delete` may touch (protect/risk rules,
//! `--delete-excluded`). Per-directory merge files (`dir-merge`, `:`) are
//! read as each directory is entered: a [`DirFilters`] is an immutable,
//! cheaply cloned snapshot of the rules in force in one directory, so
//! directories can be listed on any thread, each from its parent's snapshot.

pub mod rule;
pub mod wildmatch;

use rule::{Rule, RuleError, Template, flag};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which end of the transfer a rule list serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Chooses the files to send (hide/show and plain rules).
    Sender,
    /// Chooses what deletion may remove (protect/risk and plain rules).
    Receiver,
}

/// One filter argument from the command line, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterArg {
    /// `--filter RULE` (and `-F`, which stands for a rule).
    Rule(OsString),
    /// `--include PATTERN`.
    Include(OsString),
    /// `--exclude PATTERN`.
    Exclude(OsString),
    /// `--include-from FILE`.
    IncludeFrom(OsString),
    /// `--exclude-from FILE`.
    ExcludeFrom(OsString),
}

/// The rsync default CVS-ignore list (perishable), from rsync's `-C` docs.
const DEFAULT_CVSIGNORE: &str = "RCS SCCS CVS CVS.adm RCSLOG cvslog.* tags TAGS \
    .make.state .nse_depinfo *~ #* .#* ,* _$* *$ *.old *.bak *.BAK *.orig *.rej \
    .del-* *.a *.olb *.o *.obj *.so *.exe *.Z *.elc *.ln core .svn/ .git/ .hg/ .bzr/";

/// The parsed command-line rules, before they are split by side.
#[derive(Debug, Default)]
pub struct Filters {
    rules: Vec<Rule>,
    /// The global CVS list a `-C` rule stands for.
    cvs: Arc<Vec<Rule>>,
    /// `--delete-excluded`: the receiver drops plain rules.
    delete_excluded: bool,
    /// `-0`: merge files are NUL-separated.
    from0: bool,
    /// `--gitignore`: also exclude what git ignores.
    gitignore: bool,
}

/// Options that shape the rules.
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    /// `--delete-excluded`.
    pub delete_excluded: bool,
    /// `-0/--from0`.
    pub from0: bool,
    /// `-C/--cvs-exclude`.
    pub cvs_exclude: bool,
    /// `--gitignore`.
    pub gitignore: bool,
}

impl Filters {
    /// Parse the command line's filter arguments as rsync's client does (merge
    /// files are read now; a missing one is fatal, exit 11).
    pub fn build(args: &[FilterArg], s: Settings) -> Result<Filters, RuleError> {
        let mut f = Filters {
            delete_excluded: s.delete_excluded,
            from0: s.from0,
            gitignore: s.gitignore,
            ..Default::default()
        };
        let plain = Template {
            flags: 0,
            old_prefixes: false,
        };
        let old = |incl: bool| Template {
            flags: if incl { flag::INCLUDE } else { 0 },
            old_prefixes: true,
        };
        let mut rules = Vec::new();
        for a in args {
            match a {
                FilterArg::Rule(r) => f.parse_str(&mut rules, r.as_bytes(), plain, None)?,
                FilterArg::Include(p) => f.parse_str(&mut rules, p.as_bytes(), old(true), None)?,
                FilterArg::Exclude(p) => f.parse_str(&mut rules, p.as_bytes(), old(false), None)?,
                FilterArg::IncludeFrom(p) => {
                    f.parse_file(&mut rules, Path::new(p), old(true), None, true)?
                }
                FilterArg::ExcludeFrom(p) => {
                    f.parse_file(&mut rules, Path::new(p), old(false), None, true)?
                }
            }
        }
        if s.cvs_exclude {
            f.parse_str(&mut rules, b":C", plain, None)?;
            f.parse_str(&mut rules, b"-C", plain, None)?;
        }
        f.rules = rules;
        Ok(f)
    }

    /// Whether there are no rules at all (the common case costs nothing).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && !self.gitignore
    }

    /// The rules for `side`, in force at the transfer root `root` (an
    /// absolute directory; names are matched relative to it). Per-directory
    /// merge rules whose name has a `/` read the file in each parent of the
    /// root first, as rsync does.
    pub fn root(self: &Arc<Self>, side: Side, root: &Path) -> DirFilters {
        let mut list = Vec::new();
        let mut perdir: Vec<PerDir> = Vec::new();
        for r in &self.rules {
            let keep = match side {
                Side::Sender => !r.receiver_only(),
                Side::Receiver => {
                    !r.sender_only()
                        && !(self.delete_excluded
                            && r.flags & flag::SIDES == 0
                            && (r.flags & flag::PERDIR_MERGE == 0
                                || r.flags & flag::NO_PREFIXES != 0))
                }
            };
            if !keep {
                continue;
            }
            if r.flags & flag::PERDIR_MERGE != 0 {
                let key = base_name(&r.pattern).to_vec().into_boxed_slice();
                if perdir.iter().any(|p| p.key == key) {
                    continue;
                }
                let mut rule = r.clone();
                rule.pattern = key.clone();
                perdir.push(PerDir {
                    key,
                    rule: Arc::new(rule),
                    chain: None,
                    setup: r.pattern.contains(&b'/').then(|| r.pattern.clone()),
                });
                let mut marker = r.clone();
                marker.pattern = base_name(&r.pattern).into();
                list.push(marker);
            } else {
                list.push(r.clone());
            }
        }
        let abs = root.as_os_str().as_bytes();
        // --gitignore on the receiver protects ignored files from --delete,
        // like an exclude; --delete-excluded turns that off.
        let git = self.gitignore && !(side == Side::Receiver && self.delete_excluded);
        DirFilters {
            git: git.then(|| GitState::Pending),
            git_dir: None,
            top: Arc::new(list),
            cvs: Arc::clone(&self.cvs),
            side,
            abs_root: abs.strip_prefix(b"/").unwrap_or(abs).into(),
            perdir: perdir.into(),
            filters: Arc::clone(self),
        }
    }

    /// rsync's `setup_merge_file`: a per-directory rule named with a path is
    /// also read in every directory from that path's directory down to the
    /// parent of `root`, the first directory entered.
    fn parent_scan(&self, side: Side, r: &Rule, named: &[u8], root: &Path) -> Option<Arc<Chain>> {
        let p = Path::new(std::ffi::OsStr::from_bytes(named));
        let full = clean(&root.join(p));
        let start = full.parent()?.to_path_buf();
        let name = full.file_name()?.to_os_string();
        let mut chain: Option<Arc<Chain>> = None;
        if !root.starts_with(&start) {
            return None;
        }
        let mut dirs = Vec::new();
        let mut d = root.parent();
        while let Some(x) = d {
            if !x.starts_with(&start) {
                break;
            }
            dirs.push(x.to_path_buf());
            d = x.parent();
        }
        for dir in dirs.into_iter().rev() {
            let mut local = Vec::new();
            let mut nested = Vec::new();
            let ok =
                self.parse_perdir_file(side, r, &dir, &dir.join(&name), &mut local, &mut nested);
            if ok.is_none() {
                continue;
            }
            if r.flags & flag::NO_INHERIT != 0 {
                chain = None;
                continue;
            }
            chain = Some(Arc::new(Chain {
                rules: local,
                next: if ok == Some(true) { None } else { chain },
            }));
        }
        chain
    }

    /// Parse one rule string into `list`. `dir` is set for per-directory
    /// files: anchored rules get the directory's path, rules for the other
    /// side are dropped, and nested per-directory rules are collected.
    fn parse_str(
        &self,
        list: &mut Vec<Rule>,
        s: &[u8],
        t: Template,
        dir: Option<&mut PerDirParse>,
    ) -> Result<(), RuleError> {
        let mut dir = dir;
        for tok in rule::tokens(s, t, self.delete_excluded)? {
            if tok.flags & flag::CLEAR_LIST != 0 {
                list.clear();
                if let Some(d) = dir.as_deref_mut() {
                    d.cleared = true;
                }
                continue;
            }
            let mut pat = tok.pattern;
            if tok.flags & flag::MERGE_FILE != 0 {
                if pat.is_empty() {
                    pat = b".cvsignore".to_vec();
                }
                if tok.flags & flag::EXCLUDE_SELF != 0 {
                    let b = base_name(&pat);
                    list.push(rule::finish(0, b, None));
                }
                if tok.flags & flag::PERDIR_MERGE == 0 {
                    let path = match dir.as_deref() {
                        Some(d) => d.dir.join(std::ffi::OsStr::from_bytes(&pat)),
                        None => PathBuf::from(OsString::from_vec(pat.clone())),
                    };
                    let mt = Template {
                        flags: tok.flags & !flag::MERGE_FILE & !flag::EXCLUDE_SELF,
                        old_prefixes: false,
                    };
                    match dir.as_deref_mut() {
                        Some(d) => {
                            // Inside a per-directory file a missing merge
                            // file is skipped, as rsync does.
                            let _ = self.parse_file(list, &path, mt, Some(d), false);
                        }
                        None => self.parse_file(list, &path, mt, None, true)?,
                    }
                    continue;
                }
            }
            let prefix = dir.as_deref().map(|d| d.prefix.clone());
            let r = rule::finish(tok.flags, &pat, prefix.as_deref());
            if let Some(d) = dir.as_deref_mut() {
                let other = match d.side {
                    Side::Sender => flag::RECEIVER_SIDE,
                    Side::Receiver => flag::SENDER_SIDE,
                };
                if r.flags & flag::SIDES == other {
                    continue;
                }
                if r.flags & flag::PERDIR_MERGE != 0 {
                    d.nested.push(r.clone());
                }
            }
            list.push(r);
        }
        Ok(())
    }

    /// Read a rule file: lines (or NUL-separated records with `-0`, or words
    /// for `w`/`C` rules); `;` and `#` lines are comments. `-` is stdin.
    fn parse_file(
        &self,
        list: &mut Vec<Rule>,
        path: &Path,
        t: Template,
        dir: Option<&mut PerDirParse>,
        fatal: bool,
    ) -> Result<(), RuleError> {
        let data = if path.as_os_str() == "-" {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).map(|_| v)
        } else {
            std::fs::read(path)
        };
        let data = match data {
            Ok(d) => d,
            Err(e) if fatal => {
                return Err(RuleError {
                    message: format!(
                        "[client] failed to open {}clude file {}: {}",
                        if t.flags & flag::INCLUDE != 0 {
                            "in"
                        } else {
                            "ex"
                        },
                        path.display(),
                        crate::flist::errno_text(&e)
                    ),
                    code: crate::exit::FILE_IO,
                    prefixed: true,
                });
            }
            Err(_) => return Ok(()),
        };
        self.parse_data(list, &data, t, dir)
    }

    /// Parse a rule file's contents: lines (or NUL-separated records with
    /// `-0`, or words for `w`/`C` rules); `;` and `#` lines are comments.
    fn parse_data(
        &self,
        list: &mut Vec<Rule>,
        data: &[u8],
        t: Template,
        dir: Option<&mut PerDirParse>,
    ) -> Result<(), RuleError> {
        let word_split = t.flags & flag::WORD_SPLIT != 0;
        let mut dir = dir;
        let from0 = self.from0;
        let records = data.split(|&c| {
            (word_split && c.is_ascii_whitespace())
                || if from0 {
                    c == 0
                } else {
                    c == b'\n' || c == b'\r'
                }
        });
        for rec in records {
            if rec.is_empty() || (!word_split && (rec[0] == b';' || rec[0] == b'#')) {
                continue;
            }
            self.parse_str(list, rec, t, dir.as_deref_mut())?;
        }
        Ok(())
    }

    /// Parse the per-directory file `file` (found in `dir`) for merge rule
    /// `r`; `Some(cleared)` when it was read.
    fn parse_perdir_file(
        &self,
        side: Side,
        r: &Rule,
        dir: &Path,
        file: &Path,
        local: &mut Vec<Rule>,
        nested: &mut Vec<Rule>,
    ) -> Option<bool> {
        let mut d = PerDirParse {
            side,
            dir: dir.to_path_buf(),
            prefix: dir.as_os_str().as_bytes().to_vec(),
            nested: Vec::new(),
            cleared: false,
        };
        let t = Template {
            flags: r.flags & !(flag::MERGE_FILE | flag::PERDIR_MERGE | flag::EXCLUDE_SELF),
            old_prefixes: false,
        };
        // One read per directory and merge file: a missing or unreadable
        // file is skipped, as rsync skips it.
        let data = std::fs::read(file).ok()?;
        self.parse_data(local, &data, t, Some(&mut d)).ok()?;
        nested.append(&mut d.nested);
        Some(d.cleared)
    }

    /// The global CVS list: rsync's defaults (perishable), `~/.cvsignore`,
    /// then `$CVSIGNORE`.
    fn cvs_list(&self) -> Vec<Rule> {
        let t = flag::NO_PREFIXES | flag::WORD_SPLIT | flag::NO_INHERIT | flag::CVS_IGNORE;
        let mut list = Vec::new();
        let tp = Template {
            flags: t | flag::PERISHABLE,
            old_prefixes: false,
        };
        let _ = self.parse_str(&mut list, DEFAULT_CVSIGNORE.as_bytes(), tp, None);
        let tn = Template {
            flags: t,
            old_prefixes: false,
        };
        if let Some(home) = std::env::var_os("HOME") {
            let _ = self.parse_file(
                &mut list,
                &Path::new(&home).join(".cvsignore"),
                tn,
                None,
                false,
            );
        }
        if let Some(v) = std::env::var_os("CVSIGNORE") {
            let _ = self.parse_str(&mut list, v.as_bytes(), tn, None);
        }
        list
    }
}

/// Context of a per-directory file being parsed.
struct PerDirParse {
    side: Side,
    dir: PathBuf,
    /// What anchored rules are prefixed with (the directory's absolute path).
    prefix: Vec<u8>,
    /// Per-directory merge rules the file itself declares.
    nested: Vec<Rule>,
    /// The file cleared the list (`!`): inherited rules no longer apply.
    cleared: bool,
}

/// Rules from one directory's merge file, then the inherited ones.
#[derive(Debug)]
struct Chain {
    rules: Vec<Rule>,
    next: Option<Arc<Chain>>,
}

/// One active per-directory merge file name and its rules in force here.
#[derive(Debug, Clone)]
struct PerDir {
    key: Box<[u8]>,
    rule: Arc<Rule>,
    chain: Option<Arc<Chain>>,
    /// The name as given, when it has a path: the parent directories are
    /// scanned the first time a directory is entered.
    setup: Option<Box<[u8]>>,
}

/// The rules in force in one directory for one side; cheap to clone.
#[derive(Clone, Debug)]
pub struct DirFilters {
    top: Arc<Vec<Rule>>,
    cvs: Arc<Vec<Rule>>,
    side: Side,
    abs_root: Arc<[u8]>,
    perdir: Arc<[PerDir]>,
    filters: Arc<Filters>,
    /// `--gitignore`: the `.gitignore` matchers in force here.
    git: Option<GitState>,
    /// `--gitignore`: the source directory the entries checked here live in
    /// (the receiver judges destination names by the source's ignore files).
    git_dir: Option<Arc<Path>>,
}

/// `--gitignore` state of a directory.
#[derive(Clone, Debug)]
enum GitState {
    /// No directory entered yet: the first one loads the repository's
    /// ignore files above it.
    Pending,
    /// The matchers, deepest first.
    Ready(Option<Arc<GitNode>>),
}

/// One directory's `.gitignore` (or the repository's `info/exclude`), then
/// the ones above it.
#[derive(Debug)]
struct GitNode {
    matcher: ignore::gitignore::Gitignore,
    next: Option<Arc<GitNode>>,
}

impl GitNode {
    /// Whether git ignores `path` (absolute): the deepest file with a
    /// matching pattern decides (a `!` pattern re-includes).
    fn ignored(node: &Option<Arc<GitNode>>, path: &Path, is_dir: bool) -> bool {
        let mut n = node.as_deref();
        while let Some(g) = n {
            match g.matcher.matched(path, is_dir) {
                ignore::Match::Ignore(_) => return true,
                ignore::Match::Whitelist(_) => return false,
                ignore::Match::None => n = g.next.as_deref(),
            }
        }
        false
    }

    /// `dir/.gitignore` stacked on `next` (unchanged when there is none).
    fn push(dir: &Path, file: &Path, next: Option<Arc<GitNode>>) -> Option<Arc<GitNode>> {
        let mut b = ignore::gitignore::GitignoreBuilder::new(dir);
        // A missing file adds nothing (one open attempt, no stat first); a
        // bad line is skipped, as git skips it.
        if b.add(file).is_some_and(|e| e.io_error().is_some()) {
            return next;
        }
        match b.build() {
            Ok(matcher) if !matcher.is_empty() => Some(Arc::new(GitNode { matcher, next })),
            _ => next,
        }
    }

    /// The ignore files above `dir` within its git repository (its
    /// `.gitignore` files from the top, and `.git/info/exclude`); nothing
    /// outside a repository.
    fn parents(dir: &Path) -> Option<Arc<GitNode>> {
        let mut chain = Vec::new();
        let mut top = None;
        let mut d = dir.parent();
        while let Some(x) = d {
            chain.push(x.to_path_buf());
            if x.join(".git").exists() {
                top = Some(x.to_path_buf());
                break;
            }
            d = x.parent();
        }
        let top = top.or_else(|| dir.join(".git").exists().then(|| dir.to_path_buf()))?;
        let mut node = GitNode::push(&top, &top.join(".git/info/exclude"), None);
        for x in chain.iter().rev() {
            node = GitNode::push(x, &x.join(".gitignore"), node);
        }
        node
    }
}

impl DirFilters {
    /// The rules for the contents of directory `dir` (absolute path): the
    /// per-directory merge files found there are read and stacked on the
    /// inherited rules.
    pub fn enter(&self, dir: &Path) -> DirFilters {
        self.enter_from(dir, dir)
    }

    /// [`DirFilters::enter`] for the receiver: per-directory merge files are
    /// read in `dir` (the destination), `.gitignore` files in `src_dir`, the
    /// matching source directory.
    pub fn enter_from(&self, dir: &Path, src_dir: &Path) -> DirFilters {
        let git = self.git.as_ref().map(|g| {
            let above = match g {
                GitState::Pending => GitNode::parents(src_dir),
                GitState::Ready(n) => n.clone(),
            };
            GitState::Ready(GitNode::push(src_dir, &src_dir.join(".gitignore"), above))
        });
        let git_dir = git.as_ref().map(|_| Arc::from(src_dir));
        if self.perdir.is_empty() {
            return DirFilters {
                git,
                git_dir,
                ..self.clone()
            };
        }
        let mut perdir: Vec<PerDir> = self.perdir.to_vec();
        let mut i = 0;
        while i < perdir.len() {
            if let Some(named) = perdir[i].setup.take() {
                perdir[i].chain = self
                    .filters
                    .parent_scan(self.side, &perdir[i].rule, &named, dir);
            }
            let p = perdir[i].clone();
            let inherited = if p.rule.flags & flag::NO_INHERIT != 0 {
                None
            } else {
                p.chain.clone()
            };
            let file = dir.join(std::ffi::OsStr::from_bytes(&p.key));
            let mut local = Vec::new();
            let mut nested = Vec::new();
            let read = self.filters.parse_perdir_file(
                self.side,
                &p.rule,
                dir,
                &file,
                &mut local,
                &mut nested,
            );
            perdir[i].chain = match read {
                Some(cleared) => Some(Arc::new(Chain {
                    rules: local,
                    next: if cleared { None } else { inherited },
                })),
                None => inherited,
            };
            for n in nested {
                let key: Box<[u8]> = base_name(&n.pattern).into();
                if perdir.iter().any(|q| q.key == key) {
                    continue;
                }
                let mut rule = n.clone();
                rule.pattern = key.clone();
                perdir.push(PerDir {
                    key,
                    rule: Arc::new(rule),
                    chain: None,
                    setup: None,
                });
            }
            i += 1;
        }
        DirFilters {
            perdir: perdir.into(),
            git,
            git_dir,
            ..self.clone()
        }
    }

    /// Is `name` (relative to the transfer root) excluded? The rules decide
    /// first; when none matches, `--gitignore` does.
    pub fn excluded(&self, name: &[u8], is_dir: bool) -> bool {
        match self.check(&self.top, name, is_dir, false, ListName::Main) {
            None => self.git_ignored(name, is_dir),
            Some((r, _)) => r.flags & flag::INCLUDE == 0,
        }
    }

    /// Like [`DirFilters::excluded`], skipping perishable rules (used when
    /// deciding whether a directory being deleted is really empty).
    pub fn excluded_nonperishable(&self, name: &[u8], is_dir: bool) -> bool {
        match self.check(&self.top, name, is_dir, true, ListName::Main) {
            None => self.git_ignored(name, is_dir),
            Some((r, _)) => r.flags & flag::INCLUDE == 0,
        }
    }

    fn git_ignored(&self, name: &[u8], is_dir: bool) -> bool {
        let (Some(GitState::Ready(node)), Some(dir)) = (&self.git, &self.git_dir) else {
            return false;
        };
        if node.is_none() {
            return false;
        }
        let path = dir.join(std::ffi::OsStr::from_bytes(base_name(name)));
        GitNode::ignored(node, &path, is_dir)
    }

    /// Whether any rule could exclude something here.
    pub fn is_empty(&self) -> bool {
        self.top.is_empty() && self.git.is_none()
    }

    /// rsync's `check_filter`: the first rule that matches, and the list it
    /// is in (for `--debug=filter` lines).
    fn check<'s>(
        &'s self,
        list: &'s [Rule],
        name: &[u8],
        is_dir: bool,
        skip_perishable: bool,
        from: ListName<'s>,
    ) -> Option<(&'s Rule, ListName<'s>)> {
        for r in list {
            if skip_perishable && r.flags & flag::PERISHABLE != 0 {
                continue;
            }
            if r.flags & flag::PERDIR_MERGE != 0 {
                let key = base_name(&r.pattern);
                if let Some(p) = self.perdir.iter().find(|p| &*p.key == key) {
                    let mut c = p.chain.as_deref();
                    while let Some(ch) = c {
                        let hit = self.check(
                            &ch.rules,
                            name,
                            is_dir,
                            skip_perishable,
                            ListName::PerDir(&p.key),
                        );
                        if hit.is_some() {
                            return hit;
                        }
                        c = ch.next.as_deref();
                    }
                }
                continue;
            }
            if r.flags & flag::CVS_IGNORE != 0 {
                let hit = self.check(&self.cvs, name, is_dir, skip_perishable, ListName::Cvs);
                if hit.is_some() {
                    return hit;
                }
                continue;
            }
            if r.matches(name, is_dir, &self.abs_root) {
                return Some((r, from));
            }
        }
        None
    }

    /// The verdict on `name` with the rule that decided it, as rsync's
    /// `--debug=filter` shows it: `(excluded, "PATTERN[/][ LIST]")`; `None`
    /// for the reason when no rule matched (`--gitignore` may still exclude).
    pub fn explain(&self, name: &[u8], is_dir: bool) -> (bool, Option<String>) {
        self.explain_with(name, is_dir, false)
    }

    /// [`DirFilters::explain`], optionally skipping perishable rules.
    pub fn explain_with(
        &self,
        name: &[u8],
        is_dir: bool,
        skip_perishable: bool,
    ) -> (bool, Option<String>) {
        match self.check(&self.top, name, is_dir, skip_perishable, ListName::Main) {
            Some((r, list)) => {
                let mut why = match list {
                    // rsync 3.5 no longer keeps per-directory patterns' text.
                    ListName::PerDir(_) => "<rule from a file read earlier>".to_string(),
                    _ => {
                        let mut p = String::from_utf8_lossy(&r.pattern).into_owned();
                        if r.flags & flag::DIRECTORY != 0 {
                            p.push('/');
                        }
                        p
                    }
                };
                match list {
                    ListName::Main => {}
                    ListName::Cvs => why.push_str(" [global CVS]"),
                    ListName::PerDir(k) => {
                        why.push_str(&format!(" [per-dir {}]", String::from_utf8_lossy(k)))
                    }
                }
                (r.flags & flag::INCLUDE == 0, Some(why))
            }
            None => (self.git_ignored(name, is_dir), None),
        }
    }
}

/// Which list a matching rule came from (rsync's `debug_type`).
#[derive(Clone, Copy)]
enum ListName<'a> {
    Main,
    Cvs,
    PerDir(&'a [u8]),
}

/// Build the filters with the global CVS list filled in when a `-C` rule
/// needs it.
pub fn build(args: &[FilterArg], s: Settings) -> Result<Arc<Filters>, RuleError> {
    let mut f = Filters::build(args, s)?;
    if f.rules
        .iter()
        .any(|r| r.flags & flag::CVS_IGNORE != 0 && r.flags & flag::MERGE_FILE == 0)
    {
        f.cvs = Arc::new(f.cvs_list());
    }
    Ok(Arc::new(f))
}

/// The last `/`-component of a merge-file name.
fn base_name(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|&c| c == b'/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}

/// Lexically clean a path (`.` and `..` components), as rsync's
/// `clean_fname(CFN_COLLAPSE_DOT_DOT_DIRS)` does.
pub(crate) fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
