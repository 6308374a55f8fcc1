//! What an operator sees first from the operator subcommands: `--help` that starts with
//! what the command does and an example, and usage errors that say which `--help` to read.

mod common;

use std::process::Command;

use common::BIN;

#[test]
fn rotate_help_starts_with_what_it_does_and_an_example() {
    let out = Command::new(BIN)
        .args(["rotate", "--help"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Re-wraps every object"), "{text}");
    let example = text
        .find("gpbackup_age_plugin rotate /")
        .expect("an example");
    let details = text.find("Finding the objects").expect("the details");
    assert!(example < details, "{text}");
    // The usage line and the options come before the long guarantees, on the first
    // screen: an operator looking for a flag does not scroll through the details.
    let usage = text
        .find("Usage: gpbackup_age_plugin rotate")
        .expect("usage");
    let options = text.find("Options:").expect("the options");
    assert!(example < usage && usage < details, "{text}");
    assert!(options < details, "{text}");
    let usage_line = text[..usage].lines().count();
    assert!(usage_line <= 25, "usage on line {usage_line}:\n{text}");
}

#[test]
fn a_missing_argument_points_to_the_subcommands_help() {
    for (args, help) in [
        (
            &["rotate", "/etc/age.yaml"][..],
            "run gpbackup_age_plugin rotate --help",
        ),
        (&["verify"][..], "run gpbackup_age_plugin verify --help"),
        (&["inspect"][..], "run gpbackup_age_plugin inspect --help"),
        (&["keygen"][..], "run gpbackup_age_plugin keygen --help"),
    ] {
        let out = Command::new(BIN).args(args).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("required arguments"), "{args:?}: {err}");
        assert!(err.trim_end().ends_with(help), "{args:?}: {err}");
    }
}
