//! The `resync --daemon` configuration file, in rsyncd.conf syntax
//! (rsync's `params.c` + `loadparm.c`), plus resync's own TLS parameters.
//!
//! Syntax, as rsync reads it:
//! - a line whose first non-blank character is `#` or `;` is a comment;
//! - a line ending in `\` continues on the next line;
//! - `[name]` starts a module (`[global]` returns to the global section;
//!   a repeated module name adds to the earlier module);
//! - `name = value`: names are case-insensitive and blanks inside them do
//!   not count (`read only`, `readonly`, `Read Only`); the value is the rest
//!   of the line without surrounding blanks;
//! - parameters before the first module, or in `[global]`, are global; a
//!   module parameter there is the default for every module;
//! - booleans are `yes`/`no`, `true`/`false`, `1`/`0` (any case);
//! - `%VAR%` in a value is replaced by the environment variable `VAR` when
//!   the value is used (so `%RSYNC_USER_NAME%` works per connection); an
//!   unset variable or any other `%` stays as written ([`expand_vars`]);
//! - an unknown parameter is reported and ignored, as rsync does
//!   ("Unknown Parameter encountered" / "IGNORING unknown parameter"), and so
//!   is a global-only parameter inside a module and a line without `=`.
//!
//! Where rsync is lax in ways that could weaken a daemon, resync is strict:
//! a malformed boolean or number is an error (rsync prints a message and
//! keeps the default, or uses `atoi`'s 0), and `&include`/`&merge` are
//! rejected as not supported yet instead of being skipped.

use std::collections::BTreeMap;
use std::fmt;

/// The type of a parameter's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// yes/no.
    Bool,
    /// A decimal integer.
    Int,
    /// Free text (paths, lists, chmod strings, patterns).
    Str,
}

/// One known parameter.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// Canonical name, as rsyncd.conf(5) spells it.
    pub name: &'static str,
    /// Value type.
    pub ty: Type,
    /// Only valid in the global section.
    pub global_only: bool,
    /// Default value (as written in a config file), if any.
    pub default: Option<&'static str>,
}

const fn g(name: &'static str, ty: Type, default: Option<&'static str>) -> Param {
    Param {
        name,
        ty,
        global_only: true,
        default,
    }
}

const fn m(name: &'static str, ty: Type, default: Option<&'static str>) -> Param {
    Param {
        name,
        ty,
        global_only: false,
        default,
    }
}

use Type::{Bool, Int, Str};

/// Every parameter rsync 3.5's rsyncd.conf knows, plus resync's TLS ones.
pub const PARAMS: &[Param] = &[
    // Global only.
    g("address", Str, None),
    g("daemon chroot", Str, None),
    g("daemon gid", Str, None),
    g("daemon uid", Str, None),
    g("listen backlog", Int, Some("5")),
    g("motd file", Str, None),
    g("pid file", Str, None),
    g("plain tcp", Bool, Some("no")),
    g("port", Int, Some("8873")),
    g("socket options", Str, None),
    g("tls cert", Str, None),
    g("tls key", Str, None),
    g("tls client ca", Str, None),
    // Module (a global value is the default for every module).
    m("auth users", Str, None),
    m("charset", Str, None),
    m("comment", Str, None),
    m("dont compress", Str, None),
    m("early exec", Str, None),
    m("exclude", Str, None),
    m("exclude from", Str, None),
    m("fake super", Bool, Some("no")),
    m("filter", Str, None),
    m("forward lookup", Bool, Some("yes")),
    m("gid", Str, None),
    m("hosts allow", Str, None),
    m("hosts deny", Str, None),
    m("ignore errors", Bool, Some("no")),
    m("ignore nonreadable", Bool, Some("no")),
    m("include", Str, None),
    m("include from", Str, None),
    m("incoming chmod", Str, None),
    m("list", Bool, Some("yes")),
    m("lock file", Str, Some("/var/run/rsyncd.lock")),
    m("log file", Str, None),
    m("log format", Str, Some("%o %h [%a] %m (%u) %f %l")),
    m("max connections", Int, Some("0")),
    m("max verbosity", Int, Some("1")),
    m("munge symlinks", Bool, None),
    m("name converter", Str, None),
    m("numeric ids", Bool, None),
    m("open noatime", Bool, Some("no")),
    m("outgoing chmod", Str, None),
    m("path", Str, None),
    m("post-xfer exec", Str, None),
    m("pre-xfer exec", Str, None),
    m("read only", Bool, Some("yes")),
    m("refuse options", Str, None),
    m("reverse lookup", Bool, Some("yes")),
    m("secrets file", Str, None),
    m("strict modes", Bool, Some("yes")),
    m("syslog facility", Str, Some("daemon")),
    m("syslog tag", Str, Some("rsyncd")),
    m("temp dir", Str, None),
    m("timeout", Int, Some("0")),
    m("transfer logging", Bool, Some("no")),
    m("uid", Str, None),
    m("use chroot", Bool, Some("yes")),
    m("write only", Bool, Some("no")),
];

/// A parameter name reduced for comparison: lower case, blanks removed
/// (rsync's `strwicmp`).
fn key(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The known parameter called `name` (any spelling rsync accepts).
pub fn lookup(name: &str) -> Option<&'static Param> {
    let k = key(name);
    PARAMS.iter().find(|p| key(p.name) == k)
}

/// A fatal config error, with the line it is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line number (of the first physical line of a continued line).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (line {} of the config file)",
            self.message, self.line
        )
    }
}

impl std::error::Error for ConfigError {}

/// The parameters set in one section, by canonical name (raw values).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Section {
    values: BTreeMap<&'static str, String>,
}

impl Section {
    /// The raw value set here, if any.
    pub fn raw(&self, name: &str) -> Option<&str> {
        let p = lookup(name)?;
        self.values.get(p.name).map(String::as_str)
    }
}

/// One `[module]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// Module name as written (blanks trimmed, inner runs made one space).
    pub name: String,
    /// What the module's section set.
    pub section: Section,
}

/// A parsed configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The global section.
    pub global: Section,
    /// Modules, in the order first seen.
    pub modules: Vec<Module>,
    /// Lines rsync would log and skip (unknown parameters, badly formed lines).
    pub warnings: Vec<String>,
}

/// A typed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Bool parameter.
    Bool(bool),
    /// Int parameter.
    Int(i64),
    /// Str parameter.
    Str(String),
}

/// rsync's booleans.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" => Some(true),
        "no" | "false" | "0" => Some(false),
        _ => None,
    }
}

fn typed(p: &Param, v: &str) -> Result<Value, String> {
    match p.ty {
        Bool => parse_bool(v)
            .map(Value::Bool)
            .ok_or_else(|| format!("Badly formed boolean in configuration file: \"{v}\".")),
        Int => v
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| format!("Badly formed number for \"{}\": \"{v}\".", p.name)),
        Str => Ok(Value::Str(v.to_string())),
    }
}

impl Config {
    /// Parse a whole file's text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        // None = global section.
        let mut current: Option<usize> = None;
        let mut lines = text.split('\n').enumerate().peekable();
        while let Some((i, first)) = lines.next() {
            let lineno = i + 1;
            let mut line = first.strip_suffix('\r').unwrap_or(first).to_string();
            while line.ends_with('\\') {
                line.pop();
                match lines.next() {
                    Some((_, next)) => line.push_str(next.strip_suffix('\r').unwrap_or(next)),
                    None => break,
                }
            }
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
                continue;
            }
            let err = |message: String| ConfigError {
                line: lineno,
                message,
            };
            if let Some(rest) = t.strip_prefix('[') {
                let Some(end) = rest.find(']') else {
                    return Err(err(format!("Badly formed line in configuration file: {t}")));
                };
                let name = rest[..end].split_whitespace().collect::<Vec<_>>().join(" ");
                if name.is_empty() {
                    return Err(err("Empty section name in configuration file.".into()));
                }
                if name.eq_ignore_ascii_case("global") {
                    current = None;
                } else if let Some(i) = cfg.modules.iter().position(|m| m.name == name) {
                    current = Some(i);
                } else {
                    cfg.modules.push(Module {
                        name,
                        section: Section::default(),
                    });
                    current = Some(cfg.modules.len() - 1);
                }
                continue;
            }
            if t.starts_with('&') {
                let word = t.split_whitespace().next().unwrap_or(t);
                return Err(err(format!("config directive {word} is not supported yet")));
            }
            let Some(eq) = t.find('=') else {
                cfg.warnings.push(format!(
                    "Ignoring badly formed line in configuration file: {t}"
                ));
                continue;
            };
            let name = t[..eq].trim();
            let value = t[eq + 1..].trim();
            if name.is_empty() {
                return Err(err("Invalid parameter name in config. file.".into()));
            }
            let Some(p) = lookup(name) else {
                cfg.warnings
                    .push(format!("Unknown Parameter encountered: \"{name}\""));
                cfg.warnings
                    .push(format!("IGNORING unknown parameter \"{name}\""));
                continue;
            };
            if p.global_only && current.is_some() {
                cfg.warnings.push(format!(
                    "Global parameter {} found in module section!",
                    p.name
                ));
                continue;
            }
            // Check the type now, on the raw text; %VAR% values are checked
            // again when expanded.
            if !value.contains('%') {
                typed(p, value).map_err(err)?;
            }
            let section = match current {
                None => &mut cfg.global,
                Some(i) => &mut cfg.modules[i].section,
            };
            section.values.insert(p.name, value.to_string());
        }
        Ok(cfg)
    }

    /// The module called `name` (exact, as rsync matches module names).
    pub fn module(&self, name: &str) -> Option<&Module> {
        self.modules.iter().find(|m| m.name == name)
    }

    /// A global parameter's value: as set, else its default; `%VAR%`
    /// expanded with `env`.
    pub fn global_value(
        &self,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Value>, String> {
        let p = lookup(name).ok_or_else(|| format!("unknown parameter {name}"))?;
        let raw = self
            .global
            .values
            .get(p.name)
            .map(String::as_str)
            .or(p.default);
        raw.map(|v| typed(p, &expand_vars(v, env))).transpose()
    }

    /// A module parameter's value for `module`: the module's own setting,
    /// else the global section's, else the default; `%VAR%` expanded.
    pub fn module_value(
        &self,
        module: &Module,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Value>, String> {
        let p = lookup(name).ok_or_else(|| format!("unknown parameter {name}"))?;
        if p.global_only {
            return self.global_value(name, env);
        }
        let raw = module
            .section
            .values
            .get(p.name)
            .or_else(|| self.global.values.get(p.name))
            .map(String::as_str)
            .or(p.default);
        raw.map(|v| typed(p, &expand_vars(v, env))).transpose()
    }

    /// A boolean module parameter (`false` when unset with no default).
    pub fn module_bool(&self, module: &Module, name: &str) -> Result<bool, String> {
        match self.module_value(module, name, &env_var)? {
            Some(Value::Bool(b)) => Ok(b),
            None => Ok(false),
            Some(v) => Err(format!("{name} is not a boolean: {v:?}")),
        }
    }
}

/// The process environment, for [`expand_vars`].
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// rsync's `expand_vars`: `%VAR%` where `VAR` starts with an upper-case
/// letter and is set in `env` becomes its value; anything else is kept.
pub fn expand_vars(s: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if after.starts_with(|c: char| c.is_ascii_uppercase()) {
            if let Some(j) = after.find('%') {
                if let Some(v) = env(&after[..j]) {
                    out.push_str(&v);
                    rest = &after[j + 1..];
                    continue;
                }
            }
        }
        out.push('%');
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Split a list parameter (`hosts allow`, `auth users`, `refuse options`,
/// `exclude`, `dont compress`) into words at blanks and commas.
pub fn words(v: &str) -> Vec<&str> {
    v.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# global section
pid file = /run/resyncd.pid
port=8730
  ; indented comment
tls cert = /etc/resync/cert.pem
tls key   =   /etc/resync/key.pem  \n\
TLS Client CA = /etc/resync/ca.pem
read only = no
timeout = 600
hosts allow = 10.0.0.0/8, 192.168.1.0/24 \\
    127.0.0.1

[ ftp   area ]
\tpath = /srv/ftp
\tcomment = public archive \\
with a continued comment
\tReadOnly = yes
\tlist = False
\tauth users = alice, bob:deny @staff:ro
\tsecrets file = /etc/rsyncd.secrets
\tuse chroot = 0
\tmax connections = 4
\texclude = *.tmp .git/
\tfilter = - *.o + */
\trefuse options = delete checksum
\tincoming chmod = Dg+s,ug+w,Fo-w
\tlog file = /var/log/rsync-%RSYNC_MODULE_NAME%.log
\tuid = nobody
\tgid = nogroup
\twrite only = true

[home]
path = /home/%RSYNC_USER_NAME%
bogus thing = 1
port = 99

[global]
motd file = /etc/motd
";

    fn env(name: &str) -> Option<String> {
        match name {
            "RSYNC_USER_NAME" => Some("alice".into()),
            "RSYNC_MODULE_NAME" => Some("ftp area".into()),
            _ => None,
        }
    }

    fn s(c: &Config, m: &Module, name: &str) -> Option<Value> {
        c.module_value(m, name, &env).unwrap()
    }

    #[test]
    fn sample_parses_with_rsync_rules() {
        let c = Config::parse(SAMPLE).unwrap();
        assert_eq!(c.modules.len(), 2);
        let ftp = c.module("ftp area").unwrap();
        let home = c.module("home").unwrap();
        let st = |v: &str| Some(Value::Str(v.into()));
        // Globals, with odd spacing and case in names.
        let gv = |n| c.global_value(n, &env).unwrap();
        assert_eq!(gv("pid file"), st("/run/resyncd.pid"));
        assert_eq!(gv("port"), Some(Value::Int(8730)));
        assert_eq!(gv("tls key"), st("/etc/resync/key.pem"));
        assert_eq!(gv("tlsclientca"), st("/etc/resync/ca.pem"));
        assert_eq!(gv("tls cert"), st("/etc/resync/cert.pem"));
        // [global] later in the file is the global section again.
        assert_eq!(gv("motd file"), st("/etc/motd"));
        assert_eq!(gv("listen backlog"), Some(Value::Int(5)));
        assert_eq!(gv("address"), None);
        // Module values, defaults from [global] and from rsync.
        assert_eq!(s(&c, ftp, "path"), st("/srv/ftp"));
        assert_eq!(
            s(&c, ftp, "comment"),
            st("public archive with a continued comment")
        );
        assert_eq!(s(&c, ftp, "read only"), Some(Value::Bool(true)));
        assert_eq!(s(&c, home, "read only"), Some(Value::Bool(false)));
        assert_eq!(s(&c, ftp, "list"), Some(Value::Bool(false)));
        assert_eq!(s(&c, home, "list"), Some(Value::Bool(true)));
        assert_eq!(s(&c, ftp, "use chroot"), Some(Value::Bool(false)));
        assert_eq!(s(&c, home, "use chroot"), Some(Value::Bool(true)));
        assert_eq!(s(&c, ftp, "write only"), Some(Value::Bool(true)));
        assert_eq!(s(&c, ftp, "max connections"), Some(Value::Int(4)));
        assert_eq!(s(&c, home, "timeout"), Some(Value::Int(600)));
        assert_eq!(s(&c, home, "auth users"), None);
        assert!(c.module_bool(ftp, "read only").unwrap());
        assert!(!c.module_bool(home, "numeric ids").unwrap());
        let Some(Value::Str(h)) = s(&c, home, "hosts allow") else {
            panic!()
        };
        assert_eq!(words(&h), ["10.0.0.0/8", "192.168.1.0/24", "127.0.0.1"]);
        let Some(Value::Str(a)) = s(&c, ftp, "auth users") else {
            panic!()
        };
        assert_eq!(words(&a), ["alice", "bob:deny", "@staff:ro"]);
        assert_eq!(s(&c, ftp, "filter"), st("- *.o + */"));
        assert_eq!(s(&c, ftp, "incoming chmod"), st("Dg+s,ug+w,Fo-w"));
        // %VAR% expansion at use time.
        assert_eq!(s(&c, home, "path"), st("/home/alice"));
        assert_eq!(s(&c, ftp, "log file"), st("/var/log/rsync-ftp area.log"));
        // Unknown and misplaced parameters: reported and skipped.
        assert_eq!(
            c.warnings,
            [
                "Unknown Parameter encountered: \"bogus thing\"",
                "IGNORING unknown parameter \"bogus thing\"",
                "Global parameter port found in module section!",
            ]
        );
        assert_eq!(
            c.global_value("port", &env).unwrap(),
            Some(Value::Int(8730))
        );
    }

    #[test]
    fn booleans_numbers_and_names() {
        for (v, b) in [
            ("yes", true),
            ("YES", true),
            ("True", true),
            ("1", true),
            ("no", false),
            ("false", false),
            ("0", false),
        ] {
            let c = Config::parse(&format!("[m]\nread only = {v}\n")).unwrap();
            assert_eq!(c.module_bool(&c.modules[0], "read only").unwrap(), b, "{v}");
        }
        let e = Config::parse("[m]\nread only = nope\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(
            e.message,
            "Badly formed boolean in configuration file: \"nope\"."
        );
        assert!(Config::parse("timeout = 10s\n").is_err());
        for n in [
            "read only",
            "readonly",
            "Read Only",
            "READ  ONLY",
            " read\tonly",
        ] {
            assert_eq!(lookup(n).map(|p| p.name), Some("read only"), "{n}");
        }
        assert!(lookup("read_only").is_none());
    }

    #[test]
    fn structure_errors_and_odd_lines() {
        let e = Config::parse("[m\npath=/x\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (1, "Badly formed line in configuration file: [m")
        );
        assert!(Config::parse("[ ]\n").is_err());
        assert!(Config::parse("= x\n").is_err());
        let e = Config::parse("&include /etc/rsyncd.d\n").unwrap_err();
        assert_eq!(e.message, "config directive &include is not supported yet");
        // A line without '=' is skipped with a warning; CRLF files work; a
        // repeated module adds to the first; a trailing backslash at EOF.
        let c = Config::parse("[a]\r\npath = /a\r\njunk\r\n[b]\n[a]\ncomment = x \\").unwrap();
        assert_eq!(c.modules.len(), 2);
        let a = c.module("a").unwrap();
        assert_eq!(a.section.raw("path"), Some("/a"));
        assert_eq!(a.section.raw("comment"), Some("x"));
        assert_eq!(
            c.warnings,
            ["Ignoring badly formed line in configuration file: junk"]
        );
        // Values keep inner blanks and '=' signs.
        let c = Config::parse("[m]\ncomment =  a = b  c \n").unwrap();
        assert_eq!(c.modules[0].section.raw("comment"), Some("a = b  c"));
    }

    #[test]
    fn var_expansion_is_rsyncs() {
        let e = |s: &str| expand_vars(s, &env);
        assert_eq!(e("/home/%RSYNC_USER_NAME%/x"), "/home/alice/x");
        assert_eq!(e("%UNSET% stays"), "%UNSET% stays");
        assert_eq!(e("100% sure"), "100% sure");
        assert_eq!(e("%lower% stays"), "%lower% stays");
        assert_eq!(e("%%"), "%%");
        assert_eq!(e("a%RSYNC_USER_NAME%%RSYNC_USER_NAME%b"), "aalicealiceb");
        assert_eq!(e("%RSYNC_USER_NAME"), "%RSYNC_USER_NAME");
        // A typed value is checked after expansion.
        let c = Config::parse("[m]\ntimeout = %T%\n").unwrap();
        let t = |_: &str| Some("30".to_string());
        assert_eq!(
            c.module_value(&c.modules[0], "timeout", &t).unwrap(),
            Some(Value::Int(30))
        );
        let bad = |_: &str| Some("x".to_string());
        assert!(c.module_value(&c.modules[0], "timeout", &bad).is_err());
    }
}
