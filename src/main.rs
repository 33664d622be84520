//! The `geocrm` command-line tool.

mod cli;

use std::io::Write as _;
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
    let json = args.command.wants_json();
    // Unwinding (not exiting) out of a broken pipe runs destructors: the demo's temporary
    // database is removed, the lock released.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cli::commands::run(args.command)));
    let result = match outcome {
        Ok(result) => result,
        Err(payload) if is_broken_pipe(payload.as_ref()) => return ExitCode::from(BROKEN_PIPE_EXIT),
        Err(payload) => std::panic::resume_unwind(payload),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli::commands::error_message(&e));
            // A command that printed its JSON document put its error in it (`verify`).
            if json && !cli::commands::JSON_PRINTED.load(std::sync::atomic::Ordering::Relaxed) {
                // Scripts reading the JSON on stdout get the error there too. (Not
                // `println!`: a closed pipe here is outside `main`'s catch.)
                let error = serde_json::json!({ "error": cli::commands::error_json(&e) });
                let _ = writeln!(std::io::stdout(), "{error}");
            }
            if cli::commands::FOUND_DAMAGE.load(std::sync::atomic::Ordering::Relaxed) {
                ExitCode::from(cli::commands::DAMAGED_EXIT)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// What shells report for a process a broken pipe ended (128 + SIGPIPE): output cut short
/// is not success (`geocrm verify | head -1` on a damaged database must not say 0).
const BROKEN_PIPE_EXIT: u8 = 141;

fn is_broken_pipe(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    message.contains("failed printing to stdout") && message.contains("Broken pipe")
}

/// Output piped into a reader that stops early (`geocrm audit | head`) makes `println!`
/// panic on the broken pipe: that panic is not reported (no message, no backtrace); `main`
/// catches it and exits with [`BROKEN_PIPE_EXIT`]. Other panics are reported as usual.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_broken_pipe(info.payload()) {
            default(info);
        }
    }));
}
