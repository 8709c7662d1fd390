//! Standard output, the one place commands write their results. `println!` panics when the reader has gone
//! (`homelabctl scan | head -2`); here a closed pipe only ends the output: later writes are dropped, nothing
//! is printed about it, and the command's own exit status stands. Any other write failure (a full disk
//! behind a redirect) is an error that names standard output.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write found the reader gone; every later write is a no-op.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writing to standard output failed for a reason other than a closed pipe.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot write to standard output")]
#[diagnostic(help("check where standard output is redirected to (a full disk, a removed file)"))]
pub struct WriteError(#[source] io::Error);

/// Writes `bytes` and flushes them, so a closed pipe is noticed now rather than at exit.
pub fn bytes(bytes: &[u8]) -> Result<(), WriteError> {
    write_with(|out| out.write_all(bytes))
}

/// Writes formatted text (what the [`out!`] and [`outln!`] macros expand to).
pub fn text(args: std::fmt::Arguments<'_>) -> Result<(), WriteError> {
    write_with(|out| out.write_fmt(args))
}

/// Writes formatted text and a newline in one locked write.
pub fn line(args: std::fmt::Arguments<'_>) -> Result<(), WriteError> {
    write_with(|out| {
        out.write_fmt(args)?;
        out.write_all(b"\n")
    })
}

/// Whether the reader of standard output has gone (a long-running command stops on it).
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

fn write_with(
    write: impl FnOnce(&mut io::StdoutLock<'_>) -> io::Result<()>,
) -> Result<(), WriteError> {
    if closed() {
        return Ok(());
    }
    let mut out = io::stdout().lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(WriteError(e)),
    }
}

/// `print!` to standard output through [`text`]: yields `Result<(), WriteError>`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::text(format_args!($($arg)*))
    };
}

/// `println!` to standard output through [`line`]: yields `Result<(), WriteError>`.
macro_rules! outln {
    () => {
        $crate::out::bytes(b"\n")
    };
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
