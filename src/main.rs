//! Entry point: argv dispatch (virtual CLIs by argv[0]/argv[1], then subcommands).

mod config;
mod exec;
mod log;
mod sandbox;
mod time;

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The sandbox helper runs before anything else: it must stay single-threaded.
    if argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        == Some(std::ffi::OsStr::new(sandbox::linux::HELPER_ARG0))
    {
        std::process::exit(sandbox::linux::helper_main(&argv[1..]));
    }
    match (
        argv.get(1).and_then(|a| a.to_str()),
        argv.get(2).and_then(|a| a.to_str()),
    ) {
        (Some("sandbox"), _) => std::process::exit(sandbox::cli::main(&argv[2..])),
        (Some("debug"), Some("landlock")) => std::process::exit(sandbox::cli::main(&argv[2..])),
        _ => {}
    }
    match config::load(&[]) {
        Ok(c) => println!("{c:?}"),
        Err(e) => eprintln!("{e:#}"),
    }
}
