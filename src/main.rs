//! The `geocrm` command-line tool.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// The tool allocates with mimalloc (feature `mimalloc`, on by default): importing sealed PII
/// makes millions of small allocations, where the system allocator was much slower.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let args = cli::args::Cli::parse();
    match cli::commands::run(args.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut message = format!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                // Most errors already end with their cause's text; don't print it twice.
                let cause = s.to_string();
                if !message.ends_with(&cause) {
                    message.push_str(&format!("\n  caused by: {cause}"));
                }
                source = s.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Output piped into a reader that stops early (`geocrm audit | head`) makes `println!`
/// panic on the broken pipe: exit quietly instead, as `ripgrep` does (committed writes are
/// durable already; the lock goes with the process).
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
