//! Entry point: argv dispatch (virtual CLIs by argv[0]/argv[1], then subcommands).

mod apply_patch;

fn main() {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    if apply_patch::is_arg0_name(&argv0) {
        std::process::exit(apply_patch::main_arg0(args.collect()));
    }
    let rest: Vec<std::ffi::OsString> = args.collect();
    if rest
        .first()
        .is_some_and(|a| a == apply_patch::RUN_AS_APPLY_PATCH_ARG)
    {
        std::process::exit(apply_patch::main_run_as(rest.get(1).cloned()));
    }
    println!("codex-lite");
}
