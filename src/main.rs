//! `resync` binary: parse argv, run, exit with rsync's exit code.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = match resync::options::parse(&args) {
        resync::options::ParseOutcome::Run(opts) => resync::run(*opts),
        resync::options::ParseOutcome::Exit(code) => code,
    };
    std::process::exit(code);
}
