//! Live progress: engine events as readable lines on stderr (a wait says what for, how long so far and the
//! limit), or as a JSON stream (one object per line) on stdout for scripts.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use homelab_engine::events::{Event, EventSink};

use crate::cli::OutputFormat;

/// A sink that renders events as they come.
pub fn sink(output: OutputFormat, color: bool) -> EventSink {
    let last_wait = Mutex::new(None::<(String, Instant)>);
    EventSink::new(move |event| match output {
        OutputFormat::Json => {
            // Progress cannot fail the run: a reader that went away or a full disk only loses lines.
            let _ = outln!("{}", serde_json::to_string(event).unwrap_or_default());
        }
        OutputFormat::Text => {
            if let Some(line) = line(event, color, &last_wait) {
                eprintln!("{line}");
            }
        }
    })
}

fn secs(d: Duration) -> String {
    format!("{:.0}s", d.as_secs_f64())
}

fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Waiting events repeat every poll; show one line per wait every few seconds, not every poll.
fn line(
    event: &Event,
    color: bool,
    last_wait: &Mutex<Option<(String, Instant)>>,
) -> Option<String> {
    match event {
        Event::StepStarted { resource, action } => Some(format!(
            "{} {resource}: {action}…",
            paint(color, "1;34", "==>")
        )),
        Event::StepFinished {
            resource,
            action,
            elapsed,
        } => Some(format!(
            "{} {resource}: {action} done in {}",
            paint(color, "32", "✓"),
            secs(*elapsed)
        )),
        Event::Info { resource, message } => Some(format!("    {resource}: {message}")),
        Event::Warning { resource, message } => Some(format!(
            "{} {resource}: {message}",
            paint(color, "1;33", "warning:")
        )),
        Event::Waiting {
            resource,
            what,
            elapsed,
            timeout,
        } => {
            let mut last = last_wait.lock().ok()?;
            let key = format!("{resource}/{what}");
            let due = match &*last {
                Some((k, at)) if *k == key => at.elapsed() >= Duration::from_secs(5),
                _ => true,
            };
            if !due {
                return None;
            }
            *last = Some((key, Instant::now()));
            Some(format!(
                "    {resource}: waiting for {what} ({} of {})",
                secs(*elapsed),
                secs(*timeout)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_say_what_for_how_long_and_the_limit_once_per_interval() {
        let last = Mutex::new(None);
        let wait = Event::Waiting {
            resource: "vm.cp".into(),
            what: "the guest agent".into(),
            elapsed: Duration::from_secs(12),
            timeout: Duration::from_secs(300),
        };
        assert_eq!(
            line(&wait, false, &last).as_deref(),
            Some("    vm.cp: waiting for the guest agent (12s of 300s)")
        );
        assert_eq!(line(&wait, false, &last), None, "repeats are throttled");
    }
}
