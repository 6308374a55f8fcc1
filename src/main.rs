//! `gpbackup_age_plugin`: parse the command line, dispatch, and turn any error into one
//! line on stderr and a non-zero exit.

use std::process::ExitCode;

use gpbackup_age_plugin::cli::Cli;

fn main() -> ExitCode {
    if let Some(code) = gpbackup_age_plugin::run_keeper_if_requested() {
        std::process::exit(code);
    }
    let cli = match Cli::parse_args() {
        Ok(cli) => cli,
        Err(e) => return gpbackup_age_plugin::usage_error(e),
    };
    match gpbackup_age_plugin::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "gpbackup_age_plugin: {}",
                gpbackup_age_plugin::error_line(&e)
            );
            ExitCode::FAILURE
        }
    }
}
