//! The `geocrm` command-line tool.

mod cli;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;

/// The tool allocates with mimalloc (feature `mimalloc`, on by default): importing sealed PII
/// makes millions of small allocations, where the system allocator was much slower. Built
/// with mimalloc's `no_thp`: it does not ask for transparent huge pages, whose zeroing on
/// first touch was a third of a 1M-row import's time on the project's VM.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    quiet_on_stdout_failure();
    let args = cli::args::Cli::parse();
    let json = args.command.wants_json();
    // Unwinding (not exiting) out of a broken pipe runs destructors: the demo's temporary
    // database is removed, the lock released.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cli::commands::run(args.command)));
    let result = match outcome {
        Ok(result) => result,
        Err(payload) => match stdout_failure(payload.as_ref()) {
            Some(StdoutFailure::BrokenPipe) => return ExitCode::from(BROKEN_PIPE_EXIT),
            // A full disk or an I/O error under redirected output: an error like any other,
            // not a panic.
            Some(StdoutFailure::Other(reason)) => {
                eprintln!("error: writing to standard output: {reason}");
                return ExitCode::FAILURE;
            }
            None => std::panic::resume_unwind(payload),
        },
    };
    match result {
        // `repair` that dropped acknowledged data: done, but not a success to a script.
        Ok(()) if cli::commands::DATA_LOST.load(std::sync::atomic::Ordering::Relaxed) => {
            ExitCode::from(cli::commands::DATA_LOST_EXIT)
        }
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

/// Why `println!` failed, from its panic.
enum StdoutFailure {
    BrokenPipe,
    Other(String),
}

/// The stdout failure a panic reports (`println!` panics when it cannot write), if it is one.
fn stdout_failure(payload: &(dyn std::any::Any + Send)) -> Option<StdoutFailure> {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    let reason = message.strip_prefix("failed printing to stdout: ")?;
    Some(if reason.contains("Broken pipe") {
        StdoutFailure::BrokenPipe
    } else {
        StdoutFailure::Other(reason.to_owned())
    })
}

/// Output piped into a reader that stops early (`geocrm audit | head`) makes `println!`
/// panic on the broken pipe, and output redirected to a full disk on the failed write:
/// those panics are not reported (no message, no backtrace); `main` catches them and exits
/// with [`BROKEN_PIPE_EXIT`], or with an error. Other panics are reported as usual.
fn quiet_on_stdout_failure() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if stdout_failure(info.payload()).is_none() {
            default(info);
        }
    }));
}
