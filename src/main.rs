//! Entry point: argv dispatch (virtual CLIs by argv[0]/argv[1], then subcommands).

fn main() {
    println!("codex-lite");
}
