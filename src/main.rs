use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use dispatchctl::cli::output;

fn main() -> ExitCode {
    let cli = dispatchctl::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            output::note(format!("error: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(dispatchctl::cli::run(cli));
    let code = match outcome {
        Ok(code) => code,
        // `| head` took what it wanted; nothing to say, and nowhere to say it.
        Err(e) if output::is_closed_pipe(&e) => ExitCode::from(output::CLOSED_PIPE_EXIT),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {}", dispatchctl::cli::describe(&e));
            ExitCode::from(dispatchctl::cli::exit_code(&e))
        }
    };
    dispatchctl::telemetry::flush();
    code
}
