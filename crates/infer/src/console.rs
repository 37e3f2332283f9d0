//! Printing from the binaries without ever panicking, as `println!` does when stdout is full
//! (`> /dev/full`) or its reader has gone away (`| head -1`).

use std::fmt::Display;
use std::io::Write;

/// A line on stdout. A reader that has gone away has what it wanted: the process ends
/// quietly, with status 0. Any other failure is returned, for the caller to report.
pub fn print(line: impl Display) -> std::io::Result<()> {
    match writeln!(std::io::stdout().lock(), "{line}") {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => other,
    }
}

/// A line on stdout about work that goes on whether anyone reads it or not (training's
/// progress): a failure to print is no reason to stop.
pub fn progress(line: impl Display) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// A line on stderr: warnings and errors. When even that cannot be written there is nowhere
/// left to say so.
pub fn note(line: impl Display) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
