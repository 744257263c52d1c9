//! Entry point: argv dispatch (virtual CLIs by argv[0]/argv[1], then subcommands).

mod config;
mod log;
mod time;

fn main() {
    match config::load(&[]) {
        Ok(c) => println!("{c:?}"),
        Err(e) => eprintln!("{e:#}"),
    }
}
